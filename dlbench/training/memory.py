"""How many solutions to train as one stack on a device.

The width never changes a result (each solution's data, noise and gradient are its own); it is the
engine's choice for speed within memory. Memory per solution is measured, not guessed: one training
step of a one-solution stack, counting the parameters four times (value, gradient, two Adam moments)
and the bytes autograd saves for the backward pass.
"""
from __future__ import annotations

import torch

from dlbench.errors import ResourceError
from dlbench.resources import USABLE_SHARE, available_bytes
from dlbench.training.noise import NoiseStreams
from dlbench.training.problem import StepBatch
from dlbench.training.seeds import PROBE, derived_seed

# On a CPU, one solution at a time is fastest: stacking measured 0.5-0.7x the model-steps/s of separate
# modules at S = 16 and 0.7-1.0x at S = 4 on 2 cores (grouped convolutions leave the cache; see
# plugins/deep_vae's stack benchmark). On a GPU a stack fills the device.
CPU_STACK_WIDTH = 1
# Activations beyond what autograd saves (the forward's temporaries, the backward's buffers).
ACTIVATION_HEADROOM = 2.0


def bytes_per_solution(problem, plan, dataset, device: torch.device) -> int:
    """Memory one solution needs while training: parameters, gradients, Adam moments and saved activations."""
    network = problem.build([0]).to(device)
    parameter_bytes = sum(p.numel() * p.element_size() for p in network.parameters())
    saved_bytes = 0

    def count(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved_bytes
        saved_bytes += tensor.numel() * tensor.element_size()
        return tensor

    generator = torch.Generator(device=dataset.device).manual_seed(derived_seed(plan.seeds[0], PROBE))
    indices = torch.randint(len(dataset), (plan.batch_size,), generator=generator, device=dataset.device)
    observations = dataset.observations_from_factors(dataset.factors_from_indices(indices)).unsqueeze(0)
    noise = NoiseStreams([torch.Generator(device=device).manual_seed(0)], device, block_steps=1)
    noise.begin_step(0)
    batch = StepBatch(observations.to(device), torch.zeros((), dtype=torch.int64, device=device), [0], noise)
    with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
        problem.loss_terms(network, batch)
    return int(4 * parameter_bytes + ACTIVATION_HEADROOM * saved_bytes)


def choose_stack_width(problem, plan, dataset, device: torch.device) -> int:
    """The widest stack that fits the device (all solutions on a GPU that holds them), one at a time on a CPU."""
    per_solution = bytes_per_solution(problem, plan, dataset, device)
    usable = USABLE_SHARE * available_bytes(device)
    if per_solution > usable:
        raise ResourceError(f"one solution at model.batch_size = {plan.batch_size} needs about "
                            f"{per_solution / 2**20:,.0f} MiB but {device} has {usable / 2**20:,.0f} MiB usable; "
                            "lower model.batch_size")
    fits = int(usable // per_solution)
    preferred = len(plan.seeds) if device.type == "cuda" else CPU_STACK_WIDTH
    return max(1, min(fits, preferred, len(plan.seeds)))
