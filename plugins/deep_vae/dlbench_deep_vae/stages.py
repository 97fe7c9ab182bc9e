"""The training protocols of the deep models: one stage over the whole grid, or (λβ-VAE) every setting continuing a
first stage's solution with a fresh optimiser. Trained solutions are cached per solution under a hash of everything
that determines them, so a later run with an overlapping grid reuses what exists and changing any input misses."""
from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import dlbench
from dlbench import FitContext
from dlbench.training import AdamSettings, SolutionCache, TrainingPlan, continuation_seed, solution_seed, train_stack
from dlbench_deep_vae.grid import SolutionGrid
from dlbench_deep_vae.objective import Objective
from dlbench_deep_vae.problem import VAEProblem

STAGE_CACHE = "deep_vae_stage"
# The paper's reconstruction: the mean training BCE over the last 5,000 steps (the last tenth of a shorter run).
PAPER_TAIL_STEPS = 5_000


def tail_steps(steps: int) -> int:
    """The window of the reconstruction score: 5,000 steps, or the last tenth of a run shorter than 50,000."""
    return PAPER_TAIL_STEPS if steps >= 10 * PAPER_TAIL_STEPS else max(1, steps // 10)


def _files_digest(files) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def code_fingerprint() -> str:
    """This plugin's and the engine's source: a solution trained by other code is another solution."""
    import dlbench.training

    return _files_digest([*Path(__file__).parent.rglob("*.py"), *Path(dlbench.training.__file__).parent.glob("*.py")])


def dataset_fingerprint(dataset) -> str:
    """The source of the dataset's package (its renderer, for a stand-in): changed code is other data."""
    return _files_digest(Path(inspect.getfile(type(dataset))).parent.glob("*.py"))


@dataclass
class StageSettings:
    """What every stage of one fit shares."""

    dataset: Any
    context: FitContext
    grid: SolutionGrid
    architecture: str
    likelihood: str
    adam: AdamSettings
    batch_size: int
    num_latent: int
    num_channels: int
    log_every: int
    checkpoint_every: int
    stack_width: int | None
    cache: SolutionCache | None
    tensorboard_dir: Any = None

    def problem(self, objective: Objective, grid: SolutionGrid, cells, seeds, initial_states=None) -> VAEProblem:
        return VAEProblem(objective, grid.values(cells), seeds, self.num_channels, self.num_latent, self.architecture,
                          self.likelihood, initial_states)

    def plan(self, name: str, objective: Objective, seeds, steps: int, labels, later_model_steps: int = 0):
        return TrainingPlan(name=name, seeds=tuple(seeds), steps=steps, batch_size=self.batch_size,
                            optimizer_groups=objective.optimizer_groups(self.adam),
                            log_every=min(self.log_every, steps), checkpoint_every=self.checkpoint_every,
                            tail_steps=tail_steps(steps), stack_width=self.stack_width,
                            tensorboard_dir=self.tensorboard_dir, labels=tuple(labels),
                            later_model_steps=later_model_steps, precision=self.context.training.precision,
                            compile=self.context.training.compile, cuda_graphs=self.context.training.cuda_graphs)

    def identity(self, objective: Objective, grid: SolutionGrid, cell: tuple, steps: int) -> dict:
        facts = {k: v for k, v in self.dataset.describe().items() if k not in ("file", "cache", "note")}
        groups = [{"name": g.name, "objective": g.objective, "parameters": list(g.parameters), **g.adam.describe()}
                  for g in objective.optimizer_groups(self.adam)]
        return {"dataset": facts, "dataset_code": dataset_fingerprint(self.dataset),
                "architecture": self.architecture, "num_latent": self.num_latent, "num_channels": self.num_channels,
                "likelihood": self.likelihood, "objective": objective.describe(), "cell": dict(zip(grid.names, cell)),
                "run_seed": self.context.seed, "steps": steps, "batch_size": self.batch_size, "optimizers": groups,
                "tail_steps": tail_steps(steps), "precision": self.context.training.precision,
                "compile": self.context.training.compile,
                # Named only when on, so that the caches of fits made before the mode existed are still found.
                **({"cuda_graphs": True} if self.context.training.cuda_graphs else {}),
                "plugin": importlib.metadata.version("dlbench-deep-vae"),
                "dlbench": dlbench.__version__, "code": code_fingerprint()}


def trained_stage(settings: StageSettings, objective: Objective, grid: SolutionGrid, steps: int,
                  later_model_steps: int = 0) -> dict[tuple, dict]:
    """{cell: {"state", "tail", "frozen_at", "history"}} for every cell of `grid`: from the cache, or trained (the
    missing ones, as one stage) and cached."""
    context, cache = settings.context, settings.cache
    found, keys = {}, {}
    for cell in grid.cells():
        identity = settings.identity(objective, grid, cell, steps)
        keys[cell] = (SolutionCache.key(identity), identity)
        cached = cache.load(*keys[cell]) if cache is not None else None
        if cached is not None:
            found[cell] = cached
            label = settings.grid.label(cell, grid)
            for point in cached["history"]:  # the reused solution's curves still belong in this run's record
                context.log(point["step"], **{k: v for k, v in point.items() if k != "step"} | {"solutions": [label]})
    missing = [cell for cell in grid.cells() if cell not in found]
    if missing:
        found.update(_train_missing(settings, objective, grid, missing, steps, later_model_steps, keys))
    context.note(stages={"reused": [_cell_note(grid, c, keys) for c in grid.cells() if c not in missing],
                         "trained": [_cell_note(grid, c, keys) for c in missing],
                         "cache": str(cache.directory) if cache is not None else None})
    return found


def _train_missing(settings: StageSettings, objective: Objective, grid: SolutionGrid, missing: list[tuple],
                   steps: int, later_model_steps: int, keys: dict) -> dict[tuple, dict]:
    seeds = [solution_seed(settings.context.seed, cell[-1]) for cell in missing]
    labels = [settings.grid.label(cell, grid) for cell in missing]
    stage_name = f"{objective.model}_stage-" + hashlib.sha256(repr(missing).encode()).hexdigest()[:8]
    outcome = train_stack(settings.problem(objective, grid, missing, seeds),
                          settings.plan(stage_name, objective, seeds, steps, labels, later_model_steps),
                          settings.dataset, settings.context)
    trained = {}
    for index, cell in enumerate(missing):
        trained[cell] = {"state": {k: v[index].clone() for k, v in outcome.parameters.items()},
                         "tail": {k: v[index].clone() for k, v in outcome.tail_means.items()},
                         "frozen_at": outcome.frozen_at[index].clone(),
                         "history": _history_of(settings.context, stage_name, labels[index], objective)}
        if settings.cache is not None:
            settings.cache.store(*keys[cell], trained[cell])
    return trained


def continued_stage(settings: StageSettings, objective: Objective, first_grid: SolutionGrid,
                    first: dict[tuple, dict], steps: int) -> dict[str, Any]:
    """Every cell of the full grid continued from its first-stage solution for `steps` with a fresh optimiser; the
    settings continued from one solution see the same data and noise."""
    grid = settings.grid
    cells = grid.cells()
    seeds = [continuation_seed(solution_seed(settings.context.seed, cell[-1])) for cell in cells]
    states = [first[grid.project(cell, first_grid)]["state"] for cell in cells]
    outcome = train_stack(settings.problem(objective, grid, cells, seeds, initial_states=states),
                          settings.plan(f"{objective.model}_continuation", objective, seeds, steps,
                                        [list(cell) for cell in cells]), settings.dataset, settings.context)
    return {"state": outcome.parameters, "tail": outcome.tail_means, "frozen_at": outcome.frozen_at}


def stacked_solutions(grid: SolutionGrid, solutions: dict[tuple, dict]) -> dict[str, Any]:
    """A stage's solutions in the grid's flat order, stacked key by key."""
    cells = grid.cells()

    def stack(part: str) -> dict[str, torch.Tensor]:
        return {key: torch.stack([solutions[cell][part][key] for cell in cells]) for key in solutions[cells[0]][part]}

    return {"state": stack("state"), "tail": stack("tail"),
            "frozen_at": torch.stack([solutions[cell]["frozen_at"] for cell in cells])}


def _cell_note(grid: SolutionGrid, cell: tuple, keys) -> dict:
    return {**dict(zip(grid.names, cell)), "key": keys[cell][0]}


def _history_of(context: FitContext, stage: str, label, objective: Objective) -> list[dict]:
    """One solution's points of a stage's loss history (to keep with its cached weights)."""
    points = []
    for entry in context.history:
        if entry.get("stage") == stage and label in entry["solutions"]:
            position = entry["solutions"].index(label)
            points.append({key: [value[position]] if isinstance(value, list) and key != "solutions" else value
                           for key, value in entry.items() if key not in ("solutions",)}
                          | {"solutions": [label], "stage": f"{objective.model}_stage"})
    return points
