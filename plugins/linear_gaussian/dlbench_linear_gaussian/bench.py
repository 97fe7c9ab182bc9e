"""Speed of the batched solvers against straightforward per-start loops, measured in one call.

The per-start baselines are timed on a few starts per (β, λ) cell and scaled to the whole grid,
since the full per-start loop would take many minutes; each result says how many were timed.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from dlbench import axis_grid
from dlbench_linear_gaussian import solvers
from dlbench_linear_gaussian.instance import Instance

PAPER_BETAS = (1.0, 4.0, 8.0, 16.0, 32.0)
PAPER_LAMBDAS = (0.0, 2.0, 4.0, 6.0, 8.0)


def naive_fixed_point(sigma_y: np.ndarray, beta: float, lam: float, B: np.ndarray,
                      sigma_w: np.ndarray, tol: float, max_half_steps: int):
    """The fixed-point iteration for one start, written straight from the stationarity
    equations with explicit n×n inverses: the baseline, and an independent check."""
    n, m = sigma_y.shape[0], B.shape[0]
    precision_y = np.linalg.inv(sigma_y)
    A = sigma_z = None
    for half_step in range(1, max_half_steps + 1):
        if half_step % 2 == 1:
            precision_w = np.linalg.inv(sigma_w)
            new_sigma_z = np.linalg.inv(precision_y + B.T @ precision_w @ B)
            new_A = new_sigma_z @ B.T @ precision_w
            done = A is not None and (np.linalg.norm(new_A - A) <= tol
                                      and np.linalg.norm(new_sigma_z - sigma_z) <= tol)
            A, sigma_z = new_A, new_sigma_z
        else:
            weight = np.linalg.inv(sigma_z) + 2 * lam * np.eye(n)
            gram = A.T @ weight @ A
            new_B = np.linalg.inv(beta * np.eye(m) + gram) @ A.T @ weight
            new_sigma_w = np.linalg.inv(np.eye(m) + gram / beta)
            done = (np.linalg.norm(new_B - B) <= tol
                    and np.linalg.norm(new_sigma_w - sigma_w) <= tol)
            B, sigma_w = new_B, new_sigma_w
        if done:
            break
    return A, B, sigma_z, sigma_w, half_step


def _spec_loss(A, B, sigma_z, sigma_w, sigma_y, beta, lam):
    """L = NLL + β KL + λ tr R for one start, each term as the spec writes it."""
    n, m = A.shape
    residual = torch.eye(n, dtype=A.dtype) - A @ B
    r = residual @ sigma_y @ residual.T + A @ sigma_w @ A.T
    nll = 0.5 * (torch.trace(torch.linalg.solve(sigma_z, r)) + n * math.log(2 * math.pi)
                 + torch.linalg.slogdet(sigma_z).logabsdet)
    sigma_x = B @ sigma_y @ B.T + sigma_w
    kl = 0.5 * (torch.trace(sigma_x) - torch.linalg.slogdet(sigma_w).logabsdet - m)
    return nll + beta * kl + lam * torch.trace(r)


def naive_adamw(instance: Instance, beta: float, lam: float, starts, iterations: int,
                clip_norms: tuple[float, float], learning_rate: float = 1e-3) -> np.ndarray:
    """AdamW for one start as a user would first write it: the spec's loss, autograd and
    torch.optim. Returns the loss of every iterate 0..iterations (the last is scored, not
    stepped from, as in solvers.adamw)."""
    A, B, L_Z, L_W = (t.clone().requires_grad_(True) for t in starts)
    optimizer = torch.optim.AdamW([A, B, L_Z, L_W], lr=learning_rate, betas=(0.9, 0.999),
                                  eps=1e-8, weight_decay=0.01)
    n, m = A.shape
    sigma_y = instance.sigma_y
    losses = []
    for step in range(iterations + 1):
        sigma_z = L_Z @ L_Z.T + solvers.JITTER * torch.eye(n, dtype=torch.float64)
        sigma_w = L_W @ L_W.T + solvers.JITTER * torch.eye(m, dtype=torch.float64)
        loss = _spec_loss(A, B, sigma_z, sigma_w, sigma_y, beta, lam)
        losses.append(loss.item())
        if step == iterations:
            break
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([A, B], clip_norms[0])
        torch.nn.utils.clip_grad_norm_([L_Z, L_W], clip_norms[1])
        optimizer.step()
        with torch.no_grad():
            L_Z.copy_(torch.tril(L_Z))
            L_W.copy_(torch.tril(L_W))
    return np.array(losses)


def bench_fixed_point(quick: bool = False) -> list[dict]:
    num_starts, max_half_steps, timed_per_cell = (4, 2_000, 1) if quick else (50, 100_000, 1)
    instance = Instance.draw(100, 5, 0.05, 42)
    beta, lam = axis_grid(PAPER_BETAS, PAPER_LAMBDAS, repeat=num_starts)
    B, sigma_w = solvers.fixed_point_starts(len(beta), 10, 100, torch.Generator().manual_seed(0))
    started = time.perf_counter()
    solvers.fixed_point(instance, beta, lam, B, sigma_w, 1e-5, max_half_steps)
    ours = time.perf_counter() - started

    sigma_y = instance.sigma_y.numpy()
    timed = [cell * num_starts + k for cell in range(len(PAPER_BETAS) * len(PAPER_LAMBDAS))
             for k in range(timed_per_cell)]
    started = time.perf_counter()
    for index in timed:
        naive_fixed_point(sigma_y, beta[index].item(), lam[index].item(), B[index].numpy(),
                          sigma_w[index].numpy(), 1e-5, max_half_steps)
    baseline = (time.perf_counter() - started) * len(beta) / len(timed)
    return [{"name": f"fixed_point grid 25 cells x {num_starts} starts, n=100",
             "seconds": ours, "baseline_seconds": baseline, "ratio": baseline / ours,
             "note": f"numpy per-start loop timed on {len(timed)} starts, scaled"}]


def bench_adamw(quick: bool = False) -> list[dict]:
    num_starts, iterations, timed_per_cell = (2, 50, 1) if quick else (10, 300, 1)
    instance = Instance.draw(100, 5, 0.05, 42)
    beta, lam = axis_grid(PAPER_BETAS, PAPER_LAMBDAS, repeat=num_starts)
    starts = solvers.adamw_starts(len(beta), 10, 100, torch.Generator().manual_seed(0))
    started = time.perf_counter()
    solvers.adamw(instance, beta, lam, *starts, iterations=iterations, learning_rate=1e-3,
                  weight_decay=0.01, clip_norms=(2.0, 3.0), record_every=10, plateau_tol=1e-5)
    ours = time.perf_counter() - started

    timed = [cell * num_starts for cell in range(0, 25, 25 // (5 * timed_per_cell))]
    started = time.perf_counter()
    for index in timed:
        naive_adamw(instance, beta[index].item(), lam[index].item(),
                    [t[index] for t in starts], iterations, (2.0, 3.0))
    baseline = (time.perf_counter() - started) * len(beta) / len(timed)
    return [{"name": f"adamw grid 25 cells x {num_starts} starts x {iterations} its, n=100",
             "seconds": ours, "baseline_seconds": baseline, "ratio": baseline / ours,
             "note": f"autograd per-start loop timed on {len(timed)} starts, scaled"}]
