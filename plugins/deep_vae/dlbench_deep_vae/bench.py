"""Training speed: the engine against a plain PyTorch loop of the same model fed by a standard DataLoader, and every
deep model's engine speed against the β-VAE's."""
from __future__ import annotations

import tempfile
import time
from typing import Any

import torch

from dlbench import FitContext, create_dataset, create_model
from dlbench.training import TrainingPlan, train_stack
from dlbench_deep_vae import losses, networks
from dlbench_deep_vae.models.beta_vae import BetaVAE
from dlbench_deep_vae.problem import VAEProblem

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
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        images = next(batches).to(device, non_blocking=True)
        mean, log_var, _, logits = model(images, torch.randn(BATCH_SIZE, 10, device=device))
        terms = losses.vae_terms(images, mean, log_var, logits)
        optimizer.zero_grad()
        (terms["recon"] + 4.0 * terms["kl"]).backward()
        optimizer.step()
    _synchronize(device)
    return time.perf_counter() - started


def _timed_stage(problem, plan: TrainingPlan, dataset) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        _synchronize(dataset.device)
        started = time.perf_counter()
        train_stack(problem, plan, dataset, FitContext(dataset.device, 0, workdir, progress=False))
        _synchronize(dataset.device)
        return time.perf_counter() - started


def _engine(dataset, steps: int, **modes) -> float:
    problem = VAEProblem(BetaVAE(), {"beta": torch.tensor([4.0])}, [0], dataset.observation_shape[0], 10, "paper",
                         "bernoulli")
    plan = TrainingPlan("bench", (0,), steps, BATCH_SIZE, log_every=steps, checkpoint_every=10 * steps,
                        tail_steps=1, stack_width=1, **modes)
    return _timed_stage(problem, plan, dataset)


def bench_training(quick: bool = False) -> list[dict[str, Any]]:
    """Training steps/s at batch 64 on each dataset's stand-in: the engine (per-solution shuffles gathered in one
    call per step) against a plain loop whose DataLoader gets one observation per __getitem__."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps = 20 if quick else 120
    results = []
    for name in DATASETS[:1] if quick else DATASETS:
        dataset = create_dataset(name, source="procedural", device=device)
        _engine(dataset, 3)  # warm-up: the stand-in's one-off rendering, kernels
        _plain_loop(dataset, 3, device)
        ours = _engine(dataset, steps)
        baseline = _plain_loop(dataset, steps, device)
        results.append({"name": f"train {name} (batch {BATCH_SIZE}, {steps} steps)", "seconds": ours,
                        "baseline_seconds": baseline, "ratio": baseline / ours,
                        "note": f"engine {steps / ours:.1f} steps/s, DataLoader loop {steps / baseline:.1f} steps/s "
                                f"on {device}"})
    return results


def _model_seconds(name: str, dataset, steps: int) -> float:
    """Seconds of `steps` engine steps of one solution of model `name` (its first grid value), dlib_conv."""
    model = create_model(name, seeds=[0], architecture="dlib_conv", cache_stages=False)
    objective = model.objective
    values = {axis: torch.tensor([values[0]], dtype=torch.float32) for axis, values in model.grid.axes.items()
              if axis != "seed"}
    problem = VAEProblem(objective, values, [0], dataset.observation_shape[0], 10, "dlib_conv", "bernoulli")
    plan = TrainingPlan("bench", (0,), steps, BATCH_SIZE, optimizer_groups=objective.optimizer_groups(model.adam),
                        log_every=steps, checkpoint_every=10 * steps, tail_steps=1, stack_width=1)
    return _timed_stage(problem, plan, dataset)


def bench_models(quick: bool = False) -> list[dict[str, Any]]:
    """Each deep model's training steps/s (one solution, batch 64, dSprites stand-in) against the β-VAE's, measured
    in interleaved rounds (best of each), so the ratio is what its objective costs."""
    from dlbench_deep_vae.plugin import register_models

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps, rounds = (10, 1) if quick else (60, 3)
    dataset = create_dataset("dsprites", source="procedural", device=device)
    names = [name for name in register_models() if name != "beta_vae"]
    best = {name: float("inf") for name in ["beta_vae", *names]}
    for name in best:
        _model_seconds(name, dataset, 2)  # warm-up
    for _ in range(rounds):
        for name in best:
            best[name] = min(best[name], _model_seconds(name, dataset, steps))
    return [{"name": f"train {name} vs beta_vae (1 solution, batch {BATCH_SIZE}, {steps} steps)",
             "seconds": best[name], "baseline_seconds": best["beta_vae"], "ratio": best["beta_vae"] / best[name],
             "note": f"{steps / best[name]:.1f} model-steps/s vs β-VAE {steps / best['beta_vae']:.1f} on {device}"}
            for name in names]


MODES = {"bf16": {"precision": "bf16"}, "compiled": {"compile": True}}
CUDA_MODES = {"cuda_graphs": {"cuda_graphs": True}, "cuda_graphs+bf16": {"cuda_graphs": True, "precision": "bf16"}}


def bench_modes(quick: bool = False) -> list[dict[str, Any]]:
    """One β-VAE's training steps/s in each fast mode against eager float32, same call, on the Shapes3D stand-in
    (3 channels); compiling happens in the warm-up, outside the timing; a CUDA graph's capture (one per fit) inside
    it."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # On a GPU, enough steps that a graph's capture (three eager steps and the capture, each fit) weighs little.
    steps = 10 if quick else 300 if device.type == "cuda" else 60
    dataset = create_dataset("shapes3d", source="procedural", device=device)
    results = []
    for name, modes in {**MODES, **(CUDA_MODES if device.type == "cuda" else {})}.items():
        _engine(dataset, 3, **modes)  # warm-up (and compilation)
        _engine(dataset, 3)
        ours, baseline = _engine(dataset, steps, **modes), _engine(dataset, steps)
        results.append({"name": f"train {name} vs eager float32 (shapes3d, batch {BATCH_SIZE}, {steps} steps)",
                        "seconds": ours, "baseline_seconds": baseline, "ratio": baseline / ours,
                        "note": f"{steps / ours:.1f} vs {steps / baseline:.1f} steps/s on {device}"})
    return results


def bench_engine_operations(quick: bool = False) -> list[dict[str, Any]]:
    """Operations and host reads of one engine step of a stack of S β-VAEs (dispatch-mode count), against S
    one-solution steps: the launches a stack saves a GPU. Seconds columns hold operation counts."""
    from dlbench.training.opcount import count_step

    dataset = create_dataset("dsprites", source="procedural", factor_sizes=(1, 3, 6, 8, 8, 8))
    results, single = [], None
    for width in (1, 4) if quick else (1, 4, 16):
        problem = VAEProblem(BetaVAE(), {"beta": torch.arange(1.0, width + 1)}, list(range(width)), 1, 10, "paper",
                             "bernoulli")
        counter = count_step(problem, TrainingPlan("ops", tuple(range(width)), 1000, BATCH_SIZE, stack_width=width),
                             dataset)
        single = single or counter.operations
        results.append({"name": f"engine step S={width}: operations", "seconds": counter.operations,
                        "baseline_seconds": width * single, "ratio": width * single / counter.operations,
                        "note": f"{counter.operations} ops/step, {counter.host_reads} host reads/step, "
                                f"{counter.host_inputs} tensors from host data/step; {width} "
                                f"one-solution steps: {width * single} ops"})
    return results
