"""Speed of S stacked solutions, one training step as training does it: each solution's noise, forward, the β-VAE
loss, backward and Adam, at batch 64.

Two ratios, each measured within one call:
- the engine's stack (grouped convolutions, `networks.StackedConvVAE`) against the same S plain modules stepped one
  after another: model-steps/s at S = 1, 10, 50, 250 on a GPU (1, 4, 16 on the CPU);
- the grouped-convolution stack against a batched-matmul stack (`matmul_stack.MatmulStack`) at S = 10 and 50 (4 on
  the CPU, 2 with --quick), under float32 and, on a GPU, TF32 for both alike: each row names the faster on this
  device, so the engine can pick its stacking from a measurement.
Rows are yielded as they are measured, so a caller with a time limit keeps those that finished.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from dlbench_deep_vae import networks
from dlbench_deep_vae.losses import vae_terms
from dlbench_deep_vae.matmul_stack import MatmulStack

BATCH_SIZE = 64
NUM_LATENT = 10
BETA = 4.0
CPU_THREADS = 2
# Plain modules stepped one after another take S launches' worth of time per step: about this many model-steps a
# round keeps the baseline of S = 250 to seconds.
SEPARATE_MODEL_STEPS = 200


@dataclass(frozen=True)
class Sizes:
    channels: tuple[int, ...]
    stack_sizes: tuple[int, ...]
    compared: tuple[int, ...]
    rounds: int
    steps: int


def _sizes(device: torch.device, quick: bool) -> Sizes:
    if device.type == "cuda":
        return Sizes((3,), (1, 50), (10,), 2, 5) if quick else Sizes((1, 3), (1, 10, 50, 250), (10, 50), 3, 20)
    return Sizes((1,), (1, 2), (2,), 1, 1) if quick else Sizes((1,), (1, 4, 16), (4,), 3, 3)


def _adam(parameters) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=1e-4, betas=(0.9, 0.999), eps=1e-8)


def _noise(generators: Sequence[torch.Generator]) -> torch.Tensor:
    return torch.stack([torch.randn(BATCH_SIZE, NUM_LATENT, generator=g, device=g.device) for g in generators])


def _generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(seed) for seed in seeds]


def _descend(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _beta_vae_loss(images, mean, log_var, logits) -> torch.Tensor:
    terms = vae_terms(images, mean, log_var, logits)
    return (terms["recon"] + BETA * terms["kl"]).sum()


def _stack_step(stack, parameters, seeds: Sequence[int], images: torch.Tensor) -> Callable[[], None]:
    optimizer, generators = _adam(parameters), _generators(seeds, images.device)

    def step():
        mean, log_var, _, logits = stack(images, _noise(generators))
        _descend(_beta_vae_loss(images, mean, log_var, logits), optimizer)
    return step


def grouped_step(seeds: Sequence[int], images: torch.Tensor) -> Callable[[], None]:
    """One step of the engine's grouped-convolution stack of these solutions on images (S, B, C, 64, 64)."""
    stack = networks.StackedConvVAE.from_seeds(seeds, images.shape[2], NUM_LATENT).to(images.device)
    return _stack_step(stack, stack.parameters(), seeds, images)


def matmul_step(seeds: Sequence[int], images: torch.Tensor) -> Callable[[], None]:
    """The same step through the batched-matmul stack."""
    stack = MatmulStack([networks.build_solution(seed, images.shape[2], NUM_LATENT).to(images.device)
                         for seed in seeds])
    return _stack_step(stack, stack.parameters.values(), seeds, images)


def separate_steps(seeds: Sequence[int], images: torch.Tensor) -> Callable[[], None]:
    """The naive baseline: S plain modules with an Adam each, stepped one after another."""
    solutions = [networks.build_solution(seed, images.shape[2], NUM_LATENT).to(images.device) for seed in seeds]
    optimizers, generators = [_adam(s.parameters()) for s in solutions], _generators(seeds, images.device)

    def step():
        for solution, optimizer, solution_images, generator in zip(solutions, optimizers, images, generators):
            noise = torch.randn(BATCH_SIZE, NUM_LATENT, generator=generator, device=images.device)
            mean, log_var, _, logits = solution(solution_images, noise)
            _descend(_beta_vae_loss(solution_images, mean, log_var, logits), optimizer)
    return step


def _seconds_per_step(step, steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


def _race(ours, baseline, ours_steps: int, baseline_steps: int, rounds: int, device) -> tuple[float, float]:
    """Best seconds per step of each, over interleaved rounds after one warm-up step each: a shared machine's load
    slows whichever runs during it."""
    ours()
    baseline()
    best_ours = best_baseline = math.inf
    for _ in range(rounds):
        best_baseline = min(best_baseline, _seconds_per_step(baseline, baseline_steps, device))
        best_ours = min(best_ours, _seconds_per_step(ours, ours_steps, device))
    return best_ours, best_baseline


@contextlib.contextmanager
def _precision(device: torch.device, tf32: bool):
    """Convolutions (cuDNN) and matmuls (cuBLAS) under the same float32 policy, whatever the process default: by
    default PyTorch lets cuDNN use TF32 but not cuBLAS, which would tilt the comparison."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({CPU_THREADS} threads)"


def _images(num_solutions: int, num_channels: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator(device=device).manual_seed(0)
    return torch.rand(num_solutions, BATCH_SIZE, num_channels, 64, 64, generator=generator, device=device)


def _stacking_row(num_solutions: int, num_channels: int, sizes: Sizes, device: torch.device) -> dict:
    seeds, images = list(range(num_solutions)), _images(num_solutions, num_channels, device)
    separate_steps_per_round = max(1, min(sizes.steps, SEPARATE_MODEL_STEPS // num_solutions))
    ours, baseline = _race(grouped_step(seeds, images), separate_steps(seeds, images), sizes.steps,
                           separate_steps_per_round, sizes.rounds, device)
    return {"name": f"deep_vae stack step S={num_solutions} C={num_channels} batch {BATCH_SIZE}",
            "seconds": ours, "baseline_seconds": baseline, "ratio": baseline / ours,
            "model_steps_per_s": num_solutions / ours, "baseline_model_steps_per_s": num_solutions / baseline,
            "note": f"{num_solutions / ours:.1f} model-steps/s stacked vs {num_solutions / baseline:.1f} separate; "
                    f"best of {sizes.rounds} rounds on {_device_name(device)}"}


def _comparison_row(num_solutions: int, num_channels: int, tf32: bool, sizes: Sizes, device: torch.device) -> dict:
    seeds, images = list(range(num_solutions)), _images(num_solutions, num_channels, device)
    policy = "tf32" if tf32 else "float32"
    with _precision(device, tf32):
        ours, baseline = _race(grouped_step(seeds, images), matmul_step(seeds, images), sizes.steps, sizes.steps,
                               sizes.rounds, device)
    faster = "grouped_conv" if ours <= baseline else "batched_matmul"
    return {"name": f"deep_vae grouped conv vs batched matmul S={num_solutions} C={num_channels} {policy}",
            "seconds": ours, "baseline_seconds": baseline, "ratio": baseline / ours, "faster": faster,
            "device": _device_name(device), "precision": policy,
            "note": f"{faster.replace('_', ' ')} is faster on {_device_name(device)}: grouped conv "
                    f"{num_solutions / ours:.1f} vs batched matmul {num_solutions / baseline:.1f} model-steps/s"}


def bench_stacking(quick: bool = False) -> Iterator[dict]:
    """Model-steps/s of the grouped-convolution stack against S separate modules and against a batched-matmul
    stack (see the module docstring); on the GPU when there is one, else on the CPU with 2 threads."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = _sizes(device, quick)
    policies = (False, True) if device.type == "cuda" else (False,)
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(CPU_THREADS)
    try:
        for num_channels in sizes.channels:
            for num_solutions in sizes.stack_sizes:
                yield _stacking_row(num_solutions, num_channels, sizes, device)
            for num_solutions in sizes.compared:
                for tf32 in policies:
                    yield _comparison_row(num_solutions, num_channels, tf32, sizes, device)
    finally:
        torch.set_num_threads(previous_threads)
