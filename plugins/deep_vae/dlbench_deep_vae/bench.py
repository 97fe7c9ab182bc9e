"""Training speed: the engine against a plain PyTorch loop of the same model fed by a standard DataLoader."""
from __future__ import annotations

import time
from typing import Any

import torch

from dlbench import FitContext, create_dataset
from dlbench.training import TrainingPlan, train_stack
from dlbench_deep_vae import losses, networks
from dlbench_deep_vae.model import VAEStack

BATCH_SIZE = 64
DATASETS = ("dsprites", "shapes3d", "mpi3d_real")


class _PerIndex(torch.utils.data.Dataset):
    """What a user writes for a DataLoader: one observation per __getitem__, as a float image."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        factors = self.dataset.factors_from_indices(torch.tensor([index]))
        return self.dataset.observations_from_factors(factors)[0].float() / 255


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plain_loop(dataset, steps: int, device: torch.device) -> float:
    model = networks.build_solution(0, dataset.observation_shape[0], 10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = torch.utils.data.DataLoader(_PerIndex(dataset), batch_size=BATCH_SIZE, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    batches = iter(loader)
    beta, lam = torch.tensor(4.0, device=device), torch.tensor(0.0, device=device)
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        images = next(batches).to(device, non_blocking=True)
        mean, log_var, logits = model(images, torch.randn(BATCH_SIZE, 10, device=device))
        total = losses.loss_terms(images, mean, log_var, logits, beta, lam)["total"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    _synchronize(device)
    return time.perf_counter() - started


def _engine(dataset, steps: int, workdir) -> float:
    problem = VAEStack([0], [4.0], [0.0], dataset.observation_shape[0], 10, "paper", "bernoulli")
    plan = TrainingPlan("bench", (0,), steps, BATCH_SIZE, log_every=steps, checkpoint_every=10 * steps,
                        tail_steps=1, stack_width=1)
    _synchronize(dataset.device)
    started = time.perf_counter()
    train_stack(problem, plan, dataset, FitContext(dataset.device, 0, workdir, progress=False))
    _synchronize(dataset.device)
    return time.perf_counter() - started


def bench_training(quick: bool = False) -> list[dict[str, Any]]:
    """Training steps/s at batch 64 on each dataset's stand-in: the engine (per-solution shuffles gathered in one
    call per step) against a plain loop whose DataLoader gets one observation per __getitem__."""
    import tempfile

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps = 20 if quick else 120
    results = []
    for name in DATASETS[:1] if quick else DATASETS:
        dataset = create_dataset(name, source="procedural", device=device)
        with tempfile.TemporaryDirectory() as workdir:  # warm-up: the stand-in's one-off rendering, kernels
            _engine(dataset, 3, workdir)
        _plain_loop(dataset, 3, device)
        with tempfile.TemporaryDirectory() as workdir:
            ours = _engine(dataset, steps, workdir)
        baseline = _plain_loop(dataset, steps, device)
        results.append({"name": f"train {name} (batch {BATCH_SIZE}, {steps} steps)", "seconds": ours,
                        "baseline_seconds": baseline, "ratio": baseline / ours,
                        "note": f"engine {steps / ours:.1f} steps/s, DataLoader loop {steps / baseline:.1f} steps/s "
                                f"on {device}"})
    return results
