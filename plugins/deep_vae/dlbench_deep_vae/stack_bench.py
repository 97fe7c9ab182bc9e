"""Speed of a stack of S solutions against the same S plain modules stepped one after another.

One step is what training does: draw each solution's noise, forward, the protocol's loss, backward and
Adam, at batch 64, on the GPU when there is one (with wider stacks) and else on the CPU with 2 threads.
"""
from __future__ import annotations

import math
import time

import torch

from dlbench_deep_vae import networks
from dlbench_deep_vae.losses import vae_terms

BATCH_SIZE = 64
NUM_LATENT = 10
BETA = 4.0


def _adam(parameters) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=1e-4, betas=(0.9, 0.999), eps=1e-8)


def _seconds_per_step(step, steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


def _stack_step(stack: networks.StackedConvVAE, images: torch.Tensor, generators):
    optimizer = _adam(stack.parameters())

    def step():
        noise = torch.stack([torch.randn(BATCH_SIZE, NUM_LATENT, generator=g, device=g.device) for g in generators])
        mean, log_var, _, logits = stack(images, noise)
        terms = vae_terms(images, mean, log_var, logits)
        optimizer.zero_grad(set_to_none=True)
        (terms["recon"] + BETA * terms["kl"]).sum().backward()
        optimizer.step()
    return step


def _separate_steps(solutions: list[networks.ConvVAE], images: torch.Tensor, generators):
    optimizers = [_adam(solution.parameters()) for solution in solutions]

    def step():
        for solution, optimizer, solution_images, generator in zip(solutions, optimizers, images, generators):
            noise = torch.randn(BATCH_SIZE, NUM_LATENT, generator=generator, device=images.device)
            mean, log_var, _, logits = solution(solution_images, noise)
            terms = vae_terms(solution_images, mean, log_var, logits)
            optimizer.zero_grad(set_to_none=True)
            (terms["recon"] + BETA * terms["kl"]).backward()
            optimizer.step()
    return step


def bench_stacking(quick: bool = False) -> list[dict]:
    """Seconds per training step of S stacked solutions and of S separate modules, for S and C."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        stack_sizes, channel_counts = ((1, 16), (3,)) if quick else ((1, 4, 16, 64, 250), (1, 3))
        rounds, steps_per_round = (2, 5) if quick else (3, 20)
    else:
        stack_sizes, channel_counts = ((1, 4), (1,)) if quick else ((1, 4, 16), (1, 3))
        rounds, steps_per_round = (1, 2) if quick else (3, 3)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    results = []
    try:
        for num_channels in channel_counts:
            for num_solutions in stack_sizes:
                seeds = list(range(num_solutions))
                images = torch.rand(num_solutions, BATCH_SIZE, num_channels, 64, 64,
                                    generator=torch.Generator().manual_seed(0)).to(device)
                separate = _separate_steps([networks.build_solution(seed, num_channels, NUM_LATENT).to(device)
                                            for seed in seeds], images,
                                           [torch.Generator(device=device).manual_seed(seed) for seed in seeds])
                stacked = _stack_step(networks.StackedConvVAE.from_seeds(seeds, num_channels, NUM_LATENT).to(device),
                                      images, [torch.Generator(device=device).manual_seed(seed) for seed in seeds])
                separate()
                stacked()
                # Interleaved rounds, best of each: a shared machine's load slows whichever runs during it.
                baseline = ours = math.inf
                for _ in range(rounds):
                    baseline = min(baseline, _seconds_per_step(separate, steps_per_round, device))
                    ours = min(ours, _seconds_per_step(stacked, steps_per_round, device))
                results.append({
                    "name": f"deep_vae stack step S={num_solutions} C={num_channels} batch {BATCH_SIZE}",
                    "seconds": ours, "baseline_seconds": baseline, "ratio": baseline / ours,
                    "note": f"{num_solutions / ours:.1f} model-steps/s stacked vs {num_solutions / baseline:.1f} "
                            f"separate; best of {rounds} rounds of {steps_per_round} steps on {device}"})
    finally:
        torch.set_num_threads(previous_threads)
    return results
