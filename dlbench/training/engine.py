"""The stacked training loop: S independent solutions trained as one tensor computation.

A plugin describes one stack (`StackProblem`, in `dlbench.training.problem`): how to build the stacked network of
some solutions, and the per-solution loss terms of a `StepBatch`. The engine owns everything else: each solution's
data order and noise from its own seed, one optimiser per group over the stacked parameters (Adam is elementwise, so
this is one Adam per solution), the summed objectives (each solution gets exactly its own gradient), freezing a
solution whose objective turns NaN or infinite, training a stack too large for the device in chunks one after
another, checkpoints and bit-identical resume, progress, loss history and TensorBoard.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from dlbench.errors import ConfigError
from dlbench.fitting import FitContext
from dlbench.interfaces import DiscreteGroundTruthDataset
from dlbench.training.memory import choose_stack_width
from dlbench.training.problem import DEFAULT_GROUPS, OptimizerGroup, StackProblem, check_problem
from dlbench.training.stack import TrainingStack

# Estimate the whole fit's duration from steps of the first stack (after a few warm-up steps: first-call imports and
# allocations), and say it when it is long.
WARMUP_STEPS, CALIBRATION_STEPS = 5, 20
ANNOUNCE_AFTER_SECONDS = 120.0


@dataclass(frozen=True)
class TrainingPlan:
    """One training stage of S solutions.

    Attributes:
        name: the stage's name, also the prefix of its checkpoints.
        seeds: one per solution: its data order and noise derive from it alone.
        steps: optimiser steps of every solution.
        batch_size: observations per solution and step.
        optimizer_groups: the optimisers and what each trains (default: one Adam with the deep protocol's settings
            over every parameter, minimising "total").
        tail_steps: the last steps whose mean loss terms are the stage's final scores (the paper's reconstruction
            is the mean training BCE over the last 5,000 steps).
        stack_width: solutions per stack; None lets the engine choose for the device (it never changes a result).
        labels: one JSON-ready label per solution (e.g. its (β, λ, seed)) naming it in the loss history; default
            its index.
        later_model_steps: model-steps of the fit's later stages, so the announced duration covers the whole fit.
        precision: "float32", or "bf16" (the problem's loss terms under bfloat16 autocast).
        compile: run the network through torch.compile.
        cuda_graphs: capture a step's device part in a CUDA graph once and replay it every later step (a CUDA device
            and resident observations needed).
    """

    name: str
    seeds: tuple[int, ...]
    steps: int
    batch_size: int
    optimizer_groups: tuple[OptimizerGroup, ...] = DEFAULT_GROUPS
    log_every: int = 500
    checkpoint_every: int = 2000
    tail_steps: int = 5000
    stack_width: int | None = None
    tensorboard_dir: Any = None
    labels: tuple | None = None
    later_model_steps: int = 0
    precision: str = "float32"
    compile: bool = False
    cuda_graphs: bool = False


@dataclass
class TrainingOutcome:
    """A trained stage: every solution's parameters (leading solution axis, on the CPU), its mean loss terms over
    the last `tail_steps` steps, and the step at which its loss stopped being finite (-1: never)."""

    parameters: dict[str, torch.Tensor]
    tail_means: dict[str, torch.Tensor]
    tail_steps: int
    frozen_at: torch.Tensor
    stack_width: int
    notes: dict[str, Any] = field(default_factory=dict)


def check_batch_size(batch_size: int, dataset) -> None:
    """Refuse a batch larger than the dataset (one epoch would hold no batch)."""
    if batch_size > len(dataset):
        raise ConfigError(f"model.batch_size = {batch_size} is not accepted; expected at most the dataset's "
                          f"{len(dataset):,} observations")


def _check_plan(plan: TrainingPlan, dataset) -> None:
    if not isinstance(dataset, DiscreteGroundTruthDataset):
        raise ConfigError(f"training needs a dataset with a discrete factor grid to shuffle; {dataset.name!r} has "
                          "continuous factors")
    check_batch_size(plan.batch_size, dataset)
    if not plan.seeds:
        raise ConfigError("training needs at least one solution")


# On a GPU, float32 means float32 (no TF32 matmuls or convolutions: the papers' numbers), and cuDNN picks its algorithms
# without benchmarking, so that a resumed fit computes as the uninterrupted one did. bf16 is the fast mode.
DEVICE_POLICY = {"allow_tf32": False, "cudnn_benchmark": False}


def apply_device_policy(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = DEVICE_POLICY["allow_tf32"]
        torch.backends.cudnn.allow_tf32 = DEVICE_POLICY["allow_tf32"]
        torch.backends.cudnn.benchmark = DEVICE_POLICY["cudnn_benchmark"]


def _check_modes(plan: TrainingPlan, device: torch.device) -> None:
    if plan.cuda_graphs and device.type != "cuda":
        raise ConfigError(f"training.cuda_graphs = True needs a CUDA device; this fit runs on {device.type}; set "
                          "training.cuda_graphs = False")
    if plan.cuda_graphs and plan.compile:
        raise ConfigError("training.compile and training.cuda_graphs = True together are not accepted; expected one "
                          "of them")


def train_stack(problem: StackProblem, plan: TrainingPlan, dataset, context: FitContext) -> TrainingOutcome:
    """Train every solution of `plan`, stack by stack, resuming from the context's checkpoints."""
    _check_plan(plan, dataset)
    _check_modes(plan, context.device)
    check_problem(problem)
    apply_device_policy(context.device)
    num_solutions = len(plan.seeds)
    layout = context.load_checkpoint(f"{plan.name}.layout")
    if layout is None:  # the width is fixed at the first attempt, so a resumed fit finds its chunks again
        width = plan.stack_width or choose_stack_width(problem, plan, dataset, context.device)
        layout = {"stack_width": min(width, num_solutions)}
        context.save_checkpoint(f"{plan.name}.layout", layout, progress=0.0)
    width = layout["stack_width"]
    chunks = [list(range(start, min(start + width, num_solutions))) for start in range(0, num_solutions, width)]
    clock = _Clock(total_model_steps=plan.steps * num_solutions + plan.later_model_steps)
    finished = []
    for index, solutions in enumerate(chunks):
        name = f"{plan.name}.stack{index}"
        done = context.load_checkpoint(f"{name}.done")
        if done is None:
            done = _train_chunk(problem, plan, dataset, context, solutions, name, clock)
            context.save_checkpoint(f"{name}.done", done, progress=1.0)
        clock.model_steps_done += plan.steps * len(solutions)
        finished.append(done)
    parameters = {key: torch.cat([part["parameters"][key] for part in finished]) for key in finished[0]["parameters"]}
    tail = {key: torch.cat([part["tail_means"][key] for part in finished]) for key in finished[0]["tail_means"]}
    return TrainingOutcome(parameters, tail, min(plan.tail_steps, plan.steps),
                           torch.cat([part["frozen_at"] for part in finished]), width)


class _Clock:
    """Measures model-steps/s on the first steps and announces a long fit's expected duration once."""

    def __init__(self, total_model_steps: int):
        self.total_model_steps = total_model_steps
        self.model_steps_done = 0
        self.announced = False

    def calibrate(self, model_steps: int, seconds: float) -> None:
        if self.announced or seconds <= 0:
            return
        self.announced = True
        rate = model_steps / seconds
        remaining = (self.total_model_steps - self.model_steps_done) / rate
        if remaining > ANNOUNCE_AFTER_SECONDS:
            print(f"dlbench: about {_duration(remaining)} of training left here ({self.total_model_steps:,} "
                  f"model-steps at {rate:,.0f} model-steps/s); on a CPU, gin/quick.gin makes any config a short run",
                  file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _cpu_tensors(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _cpu_tensors(item) for key, item in value.items()}
    return value


def _train_chunk(problem, plan: TrainingPlan, dataset, context: FitContext, solutions: list[int], name: str,
                 clock: _Clock) -> dict[str, Any]:
    from tqdm.auto import tqdm  # only training shows a progress bar

    chunk = TrainingStack(problem, plan, dataset, context, solutions)
    saved = context.load_checkpoint(name)
    if saved is not None:
        chunk.load(saved)
    writer = _tensorboard_writer(plan, name)
    bar = tqdm(total=plan.steps, initial=chunk.step, disable=not context.progress, leave=False, mininterval=1.0,
               desc=f"{name} ({len(solutions)} solutions)", unit="step", file=sys.stderr)
    started, started_step = time.perf_counter(), chunk.step
    warm = None
    while chunk.step < plan.steps:
        chunk.train_step()
        bar.update(1)
        if chunk.step - started_step == WARMUP_STEPS:
            _synchronize(context.device)  # the steps are queued on a GPU: time what it has done
            warm = time.perf_counter()
        elif chunk.step - started_step == WARMUP_STEPS + CALIBRATION_STEPS:
            _synchronize(context.device)
            clock.calibrate(CALIBRATION_STEPS * len(solutions), time.perf_counter() - warm)
        if chunk.step % plan.log_every == 0 or chunk.step == plan.steps:
            _log(chunk, context, name, bar, writer, time.perf_counter() - started, chunk.step - started_step)
        if chunk.step % plan.checkpoint_every == 0 and chunk.step < plan.steps:
            context.save_checkpoint(name, chunk.state(), progress=chunk.step / plan.steps)
    bar.close()
    if writer is not None:
        writer.close()
    tail_count = plan.steps - chunk.tail_start
    return {"parameters": _cpu_tensors(chunk.network.state_dict()),
            "tail_means": {key: (value / tail_count).float().cpu() for key, value in chunk.tail_sums.items()},
            "frozen_at": chunk.frozen_at.cpu()}


def _log(chunk: TrainingStack, context: FitContext, name: str, bar, writer, seconds: float, steps: int) -> None:
    """Mean loss terms per solution since the last log, into the record's history (and TensorBoard)."""
    since = chunk.step % chunk.plan.log_every or chunk.plan.log_every
    means = {key: (value / since).cpu() for key, value in chunk.log_sums.items()}
    torch._foreach_zero_(list(chunk.log_sums.values()))  # in place: a captured step adds to these tensors
    labels = chunk.plan.labels
    context.log(chunk.step, stage=chunk.plan.name, stack=name,
                solutions=[labels[s] if labels else s for s in chunk.solutions],
                **{key: [_finite_or_none(v) for v in value.tolist()] for key, value in means.items()})
    rate = steps / seconds if seconds > 0 else math.nan
    summary = {key: f"{torch.nanmean(value.float()).item():.4g}" for key, value in means.items() if value.ndim == 1}
    bar.set_postfix({"steps/s": f"{rate:.1f}", "model-steps/s": f"{rate * len(chunk.solutions):.1f}", **summary},
                    refresh=False)
    if writer is not None:
        for key, value in means.items():
            if value.ndim == 1:
                for solution, number in zip(chunk.solutions, value.tolist()):
                    writer.add_scalar(f"{chunk.plan.name}/{key}/solution_{solution}", number, chunk.step)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finite_or_none(value):
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value if math.isfinite(value) else None


def _tensorboard_writer(plan: TrainingPlan, name: str):
    if plan.tensorboard_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("model.tensorboard = True needs the tensorboard package; install it (pip install "
                          "tensorboard) or leave model.tensorboard off") from None
    return SummaryWriter(log_dir=str(plan.tensorboard_dir / name))
