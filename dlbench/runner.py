"""One run, straight through: config -> dataset -> model -> fit -> metrics -> one atomic record.

A run's directory name is derived from its config and seed, so rerunning the same command finds its
own unfinished work: it is built in `<run_id>.partial/` (where a model keeps its checkpoints) and
renamed to `<run_id>/` only once the record is complete.
"""
from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

import gin
from dlbench import config, records
from dlbench.errors import ConfigError
from dlbench.interfaces import ExactMetricsModel, GroundTruthDataset, Model
from dlbench.plugins import get_plugins

# Where a run's model keeps resume checkpoints, inside the partial run directory.
CHECKPOINT_DIR = "checkpoints"
PACKAGES_RECORDED = ("dlbench", "torch", "numpy", "scipy", "scikit-learn", "gin-config", "pluggy")


@dataclass
class RunResult:
    run_dir: Path
    record: dict[str, Any]
    reused: bool  # True when a finished run with the same config already existed


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when there is a GPU; `cuda` without one is a user error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {requested}: no CUDA device is available here; "
                              "use --device auto or cpu")
        return torch.device(requested)
    raise ConfigError(f"--device {requested!r} is not accepted; expected auto, cpu or cuda[:N]")


def build_dataset(experiment: config.Experiment, device: torch.device) -> GroundTruthDataset:
    registration = get_plugins().datasets.get(experiment.dataset_name)
    return registration.factory(source=experiment.dataset_source, device=device)


def build_model(experiment: config.Experiment) -> Model:
    return get_plugins().models.get(experiment.model_name).factory()


def evaluate_metrics(model: Model, dataset: GroundTruthDataset, metric_names: Sequence[str],
                     seed: int) -> dict[str, Any]:
    """Score the model with each named metric from the registry, each from its own seeded
    generator so that adding a metric never changes another's samples."""
    registry = get_plugins().metrics
    metrics = [registry.get(name).factory() for name in metric_names]
    results = {}
    for name, metric in zip(metric_names, metrics):
        generator = torch.Generator(device=dataset.device).manual_seed(seed)
        started = time.perf_counter()
        result = dict(metric(model, dataset, generator=generator))
        result.setdefault("seconds", time.perf_counter() - started)
        results[name] = result
    return results


def _run_id(experiment: config.Experiment, seed: int) -> str:
    digest = hashlib.sha256(f"{gin.config_str()}\nseed={seed}".encode()).hexdigest()[:10]
    return f"{experiment.model_name}-{experiment.dataset_name}-seed{seed}-{digest}"


def _git_revision() -> str | None:
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                   capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None


def environment(device: torch.device) -> dict[str, Any]:
    versions = {}
    for package in PACKAGES_RECORDED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
        "git_revision": _git_revision(),
    }


def run_experiment(config_files: Sequence[str | Path], bindings: Sequence[str] = (), *,
                   out_dir: str | Path = "runs", device: str = "auto", seed: int | None = None,
                   progress: bool = True) -> RunResult:
    started = time.perf_counter()
    plugins = get_plugins()  # registers every plugin's configurables before gin parses
    config.parse(config_files, bindings)
    experiment = config.read_experiment()
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed {seed} is not accepted; expected an integer >= 0")
    seed = experiment.random_seed if seed is None else seed
    run_id = _run_id(experiment, seed)
    out_dir = Path(out_dir)
    final_dir = out_dir / run_id
    if (final_dir / records.RECORD_FILE).is_file():
        return RunResult(final_dir, records.read_record(final_dir), reused=True)

    torch_device = resolve_device(device)
    dataset = build_dataset(experiment, torch_device)
    model = build_model(experiment)
    model_registration = plugins.models.get(experiment.model_name)
    for name in experiment.metric_names:
        plugins.metrics.get(name)  # fail on an unknown metric before the fit, not after

    work_dir = out_dir / f"{run_id}.partial"
    checkpoint_dir = work_dir / CHECKPOINT_DIR
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    fit_started = time.perf_counter()
    model.fit(dataset, device=torch_device, seed=seed, workdir=checkpoint_dir, progress=progress)
    fit_seconds = time.perf_counter() - fit_started

    evaluate_started = time.perf_counter()
    metrics: dict[str, Any] = {}
    if isinstance(model, ExactMetricsModel):
        metrics[records.EXACT_METRICS] = {"mode": "exact", "values": model.exact_metrics()}
    metrics.update(evaluate_metrics(model, dataset, experiment.metric_names,
                                    experiment.evaluation_seed))
    evaluate_seconds = time.perf_counter() - evaluate_started

    records.save_state(work_dir / records.STATE_FILE, model.state_dict())
    operative_config = gin.operative_config_str()
    records.atomic_write_text(work_dir / records.CONFIG_FILE, operative_config)
    info = next(i for i in plugins.infos if i.name == model_registration.plugin)
    record = {
        "schema": records.SCHEMA,
        "run_id": run_id,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": experiment.model_name, "plugin": info.name,
                  "distribution": info.distribution, "version": info.version,
                  "hyperparameters": model.hyperparameters()},
        "dataset": dataset.describe(),
        "seed": seed,
        "solution_axes": dict(model.solution_axes),
        "metrics": metrics,
        "timings": {"fit_seconds": fit_seconds, "evaluate_seconds": evaluate_seconds,
                    "total_seconds": time.perf_counter() - started},
        "environment": environment(torch_device),
        "config_files": [str(f) for f in config_files],
        "bindings": list(bindings),
        "config": gin.config_str(),
        "operative_config": operative_config,
        "files": [records.STATE_FILE, records.CONFIG_FILE],
    }
    written = records.write_record(work_dir, record)
    shutil.rmtree(checkpoint_dir)  # only for resuming; state.npz holds the result
    if final_dir.exists():  # a leftover without a record: never a finished run, safe to replace
        shutil.rmtree(final_dir)
    work_dir.rename(final_dir)
    return RunResult(final_dir, written, reused=False)


def load_run(run_dir: str | Path, device: str = "auto", bindings: Sequence[str] = ()
             ) -> tuple[dict[str, Any], Model, GroundTruthDataset]:
    """Rebuild a finished run's fitted model and its dataset from its record and state file.
    The run's whole parsed config is restored (so settings of metrics the run did not score are
    kept), then `bindings` are applied on top."""
    run_dir = Path(run_dir)
    record = records.read_record(run_dir)
    get_plugins()
    gin.clear_config()
    gin.parse_config(record["config"])
    config.parse_bindings(bindings)
    gin.finalize()
    experiment = config.read_experiment()
    torch_device = resolve_device(device)
    dataset = build_dataset(experiment, torch_device)
    model = build_model(experiment)
    model.load_state_dict(records.load_state(run_dir / records.STATE_FILE, torch_device))
    return record, model, dataset
