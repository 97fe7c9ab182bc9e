"""One run, straight through: config -> dataset -> model -> fit -> state -> metrics -> one atomic record.

A run's id hashes what determines its fitted model (the dataset, the model and their bindings, the
seed, the model plugin's version), never the evaluation settings. So rerunning the same command
finds its own unfinished work, a changed plugin never reuses an older fit, and a changed metric
setting re-scores the existing fit instead of training again. A run is built in `<run_id>.partial/`
(checkpoints, the fitted state, finished metrics) under the lock `<run_id>.lock`, and renamed to
`<run_id>/` only once its record is complete; a finished run is never deleted or replaced.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

import gin
from dlbench import config, evaluation, records, resources
from dlbench.atomic import atomic_write_json, atomic_write_text
from dlbench.errors import ConfigError, DlbenchError, PluginFailure
from dlbench.fitting import FitContext
from dlbench.interfaces import ExactMetricsModel, TrainingScoresModel
from dlbench.locking import RunLock
from dlbench.plugins import get_plugins

# Inside a partial run directory: the model's resume checkpoints, its fit segments, the finished metrics.
CHECKPOINT_DIR = "checkpoints"
FIT_FILE = "fit.json"
PARTIAL_METRICS_FILE = "metrics.partial.json"
# What a fit may leave beside the record (FitContext.output_dir), kept with the finished run.
OUTPUT_DIRS = ("tensorboard",)
PACKAGES_RECORDED = ("dlbench", "torch", "numpy", "scipy", "scikit-learn", "gin-config", "pluggy")


@dataclass
class RunResult:
    run_dir: Path
    record: dict[str, Any]
    reused: bool  # True when a finished run with the same fit already existed
    rescored: list[str] = field(default_factory=list)  # metrics (re)scored on that existing fit
    note: str | None = None  # what happened that the user should know (e.g. a finished record was kept)


def check_out_dir(out_dir: str | Path) -> Path:
    """The output directory, created if needed; a path that cannot be one is refused before any work."""
    if str(out_dir).strip() == "":
        raise ConfigError("--out '' is not accepted; expected a directory path (default: runs)")
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a file; expected a directory (existing or new)")
    inside = next((parent for parent in (path, *path.absolute().parents) if _is_run_dir(parent)), None)
    if inside is not None:
        where = "a run directory" if inside == path else f"inside the run directory {str(inside)!r}"
        raise ConfigError(f"--out {str(path)!r} is {where}; expected a directory of run directories, such as "
                          f"{str(inside.parent)!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"--out {str(path)!r}: a parent of it is a file; expected a directory path") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {str(path)!r} is not writable; choose a directory you can write to")
    return path


def _is_run_dir(path: Path) -> bool:
    """A finished run's directory, or an unfinished one's (`<run_id>.partial`)."""
    return (path / records.RECORD_FILE).is_file() or (path.name.endswith(".partial") and (path / FIT_FILE).is_file())


def _git_revision() -> str | None:
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                   capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:  # not a git checkout (an installed wheel, say)
        return None
    return completed.stdout.strip() or None


def environment(device: torch.device) -> dict[str, Any]:
    versions = {}
    for package in PACKAGES_RECORDED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        # The engine's device policy (dlbench.training.engine.DEVICE_POLICY), as it stood when the record was written.
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
        "git_revision": _git_revision(),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _read_progress(path: Path) -> dict[str, Any]:
    """A progress file of the partial run (fit.json, metrics.partial.json) as a JSON object; {} where it is missing
    or damaged, so that the work it saved is done again (a fit resumes from its checkpoints, metrics are scored again)
    rather than the run stopping at a file dlbench writes for itself."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _saved_segments(saved: dict[str, Any]) -> list[dict[str, Any]]:
    """fit.json's segments where every one is whole; none (the earlier attempts' time unknown) otherwise."""
    segments = saved.get("segments")
    whole = isinstance(segments, list) and all(
        isinstance(segment, dict) and isinstance(segment.get("started"), str)
        and isinstance(segment.get("resumed"), bool) and isinstance(segment.get("outcome"), str)
        and config.is_real(segment.get("seconds")) for segment in segments)
    return segments if whole else []


class _FitSegments:
    """The fit's time, segment by segment: an interrupted fit's segments survive in fit.json, so `fit_seconds`
    adds up every attempt. The running segment is saved at each checkpoint and when the attempt ends."""

    def __init__(self, path: Path, resumed: bool):
        self.path = path
        self.segments = _saved_segments(_read_progress(path))
        self.current = {"started": _now(), "seconds": 0.0, "resumed": resumed or bool(self.segments),
                        "outcome": "running"}
        self.segments.append(self.current)
        self._started = time.perf_counter()

    def save(self, outcome: str = "running", **finished: Any) -> dict:
        """Write (and return) the segments; a finished fit adds what the record takes from the fitted model."""
        self.current["seconds"] = time.perf_counter() - self._started
        self.current["outcome"] = outcome
        payload = records.to_jsonable({"segments": self.segments, **finished})
        atomic_write_json(self.path, payload)
        return payload

    @property
    def total_seconds(self) -> float:
        return sum(segment["seconds"] for segment in self.segments)


def _fit(model, dataset, registration, work_dir: Path, device: torch.device, seed: int, progress: bool,
         training: config.TrainingSettings) -> dict:
    """Fit the model (resuming from checkpoints), save its state, and mark the fit finished in fit.json, whose
    content it returns."""
    checkpoint_dir = work_dir / CHECKPOINT_DIR
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    segments = _FitSegments(work_dir / FIT_FILE, resumed=any(checkpoint_dir.iterdir()))
    context = FitContext(device, seed, checkpoint_dir, progress=progress, after_checkpoint=segments.save,
                         training=training, output_dir=work_dir)
    torch.manual_seed(seed)
    try:
        model.fit(dataset, context)
    except KeyboardInterrupt:
        segments.save("interrupted")
        raise
    except DlbenchError:
        raise  # a refused request (a bad checkpoint, too large a stack) made no progress worth a segment
    except Exception as exc:  # the plugin's own code failed: say whose, and keep what it wrote
        if resources.is_out_of_memory(exc):  # not the plugin's failure: the request is larger than the device
            raise resources.out_of_memory_refusal(exc, f"the fit of model {registration.name!r}", device,
                                                  _size_settings(registration.name, training)) from exc
        segments.save("failed")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PluginFailure(f"model {registration.name!r} (plugin {registration.plugin} {registration.version}) "
                            f"failed during fit: {type(exc).__name__}: {reason}; its partial run is kept in "
                            f"{work_dir} (--debug shows the traceback)") from exc
    digest = records.save_state(work_dir / records.STATE_FILE, model.state_dict())
    # What the record takes from the fitted model itself is captured now, in the same write that marks the fit
    # finished: a model restored from state.npz has its weights but not what fit learnt from the dataset and the
    # training settings, so a run resumed at evaluation must not ask it again.
    return segments.save("finished", telemetry=context.telemetry, hyperparameters=model.hyperparameters(),
                         model_scores=_model_scores(model), state_digest=digest)


def _size_settings(model_name: str, training: config.TrainingSettings) -> str:
    """The settings that size a fit, as bound: the model's own and the core's training settings."""
    bound = [f"{name} = {value!r}" for name, value in training.given().items()
             if name in ("encoder.num_latent", "model.batch_size")]
    own = config.bindings_of(gin.config_str(), model_name)
    bound += [f"{model_name}.{name} = {value}" for name, value in own.items()]
    return ", ".join(bound) or f"the settings of {model_name}"


def _model_scores(model) -> dict[str, Any]:
    """The scores a model gives of itself: exact (closed-form) metrics and its training scores."""
    scores = {}
    if isinstance(model, ExactMetricsModel):
        scores[records.EXACT_METRICS] = {"mode": "exact", "values": model.exact_metrics()}
    if isinstance(model, TrainingScoresModel):
        scores[records.TRAINING_SCORES] = {"mode": "training", "values": model.training_scores()}
    return scores


def _fitted(work_dir: Path) -> dict | None:
    """fit.json of a finished fit whose state was saved, or None when the fit must (re)start from checkpoints."""
    saved = _read_progress(work_dir / FIT_FILE)
    segments = _saved_segments(saved)
    finished = segments and segments[-1]["outcome"] == "finished" \
        and isinstance(saved.get("hyperparameters"), dict) and isinstance(saved.get("model_scores"), dict) \
        and isinstance(saved.get(records.STATE_DIGEST_FIELD), str) and isinstance(saved.get("telemetry", {}), dict)
    return saved if finished and (work_dir / records.STATE_FILE).is_file() else None


def _fit_entry(fitted: dict) -> dict:
    segments = fitted["segments"]
    return {"segments": segments, "resumed": any(segment["resumed"] for segment in segments),
            "seconds": sum(segment["seconds"] for segment in segments), **fitted.get("telemetry", {})}


def _finish(work_dir: Path, final_dir: Path) -> tuple[bool, str | None]:
    """Rename the complete partial directory into place. A finished record already there (a run whose lock had
    expired) is kept, never replaced; a leftover without a record is moved aside. Returns (whether the existing
    record was kept, a note for the user)."""
    if (final_dir / records.RECORD_FILE).is_file():
        shutil.rmtree(work_dir)
        return True, f"a finished record was already at {final_dir}; it is kept and this attempt's copy discarded"
    note = None
    if final_dir.exists():
        aside = final_dir.with_name(f"{final_dir.name}.stale-{int(time.time())}")
        final_dir.rename(aside)
        note = f"an unfinished leftover at {final_dir} (no record) was moved to {aside}"
    work_dir.rename(final_dir)
    return False, note


def _score_existing(plugins, run_dir: Path, record: dict, experiment, dataset, metrics, stale: list[str],
                    torch_device: torch.device) -> dict:
    """Score `stale` metrics on a finished run's saved fit and update its record (the run's lock is held)."""
    model = evaluation.build_model(plugins, experiment)
    record_file = run_dir / records.RECORD_FILE
    evaluation.restore_state(model, run_dir / records.STATE_FILE, torch_device, record_file,
                             records.bound_state_digest(record, str(record_file)))
    chosen = [m for m in metrics if m.name in stale]
    results = evaluation.evaluate_metrics(model, dataset, chosen, experiment.evaluation_seed)
    return evaluation.update_record(run_dir, results, gin.config_str())


def run_experiment(config_files: Sequence[str | Path], bindings: Sequence[str] = (), *,
                   out_dir: str | Path = "runs", device: str = "auto", seed: int | None = None,
                   progress: bool = True, wait: bool = False) -> RunResult:
    started = time.perf_counter()
    plugins = get_plugins()  # registers every plugin's configurables before gin parses
    plugins.require_no_conflicts()
    config.parse(config_files, bindings)
    experiment = config.read_experiment()
    if seed is not None:
        config.check_seed("--seed", seed)
    seed = experiment.random_seed if seed is None else seed
    out_dir = check_out_dir(out_dir)
    torch_device = evaluation.resolve_device(device)
    # Everything the config names is built, and so validated, before any fit starts.
    dataset_registration = plugins.datasets.get(experiment.dataset_name)
    model_registration = plugins.models.get(experiment.model_name)
    metrics = evaluation.build_metrics(plugins, experiment.metric_names)
    model = evaluation.build_model(plugins, experiment)
    dataset = evaluation.build_dataset(plugins, experiment, torch_device)
    config_text = gin.config_str()
    fit_hash = config.identity_hash({
        "bindings": config.fit_identity(config_text, plugins.metrics.names()), "seed": seed,
        "model_plugin": [model_registration.distribution, model_registration.version]})
    run_id = f"{experiment.model_name}-{experiment.dataset_name}-seed{seed}-{fit_hash}"
    final_dir = out_dir / run_id

    with RunLock(out_dir / f"{run_id}.lock", f"run {run_id}", wait=wait):
        if (final_dir / records.RECORD_FILE).is_file():
            existing = evaluation.load_record(final_dir)
            stale = evaluation.stale_metrics(existing["metrics"], metrics, experiment.evaluation_seed)
            record = _score_existing(plugins, final_dir, existing, experiment, dataset, metrics, stale, torch_device) \
                if stale else existing
            return RunResult(final_dir, record, reused=True, rescored=stale)

        work_dir = out_dir / f"{run_id}.partial"
        fresh = not work_dir.exists()
        work_dir.mkdir(exist_ok=True)
        fitted = _fitted(work_dir)
        if fitted is not None:
            evaluation.restore_state(model, work_dir / records.STATE_FILE, torch_device, work_dir / FIT_FILE,
                                     fitted[records.STATE_DIGEST_FIELD])  # resume at evaluation
        else:
            (work_dir / PARTIAL_METRICS_FILE).unlink(missing_ok=True)  # scores of an earlier fit, if any
            try:
                fitted = _fit(model, dataset, model_registration, work_dir, torch_device, seed, progress,
                              experiment.training)
            except DlbenchError as exc:
                # A request refused before any progress (too large, say) leaves nothing behind to resume; a
                # plugin's crash keeps its partial run for inspection.
                if fresh and not isinstance(exc, PluginFailure) and not any((work_dir / CHECKPOINT_DIR).iterdir()):
                    shutil.rmtree(work_dir)
                raise

        evaluate_started = time.perf_counter()
        partial_metrics = work_dir / PARTIAL_METRICS_FILE
        # The model's own scores are in fit.json; a damaged entry is scored again.
        sampled = {name: entry for name, entry in _read_progress(partial_metrics).items() if isinstance(entry, dict)}
        scored = {**sampled, **fitted["model_scores"]}
        stale = evaluation.stale_metrics(scored, metrics, experiment.evaluation_seed)
        remaining = [m for m in metrics if m.name in stale]

        def keep(name: str, result: dict) -> None:  # an interruption resumes at the next metric
            scored[name] = sampled[name] = result
            atomic_write_json(partial_metrics, sampled)

        evaluation.evaluate_metrics(model, dataset, remaining, experiment.evaluation_seed, on_result=keep)
        evaluate_seconds = time.perf_counter() - evaluate_started

        operative_config = gin.operative_config_str()
        atomic_write_text(work_dir / records.CONFIG_FILE, operative_config)
        fit_entry = _fit_entry(fitted)
        record = {
            "schema": records.SCHEMA,
            "run_id": run_id,
            "fit_hash": fit_hash,
            "created": _now(),
            "model": {"name": experiment.model_name, "plugin": model_registration.plugin,
                      "distribution": model_registration.distribution, "version": model_registration.version,
                      "hyperparameters": fitted["hyperparameters"]},
            "dataset": {**dataset.describe(), "plugin": dataset_registration.plugin,
                        "plugin_version": dataset_registration.version},
            "seed": seed,
            "solution_axes": dict(model.solution_axes),
            "replicate_axes": list(model.replicate_axes),
            "metrics": {name: scored[name] for name in
                        [n for n in (records.EXACT_METRICS, records.TRAINING_SCORES) if n in scored]
                        + [m.name for m in metrics]},
            "metrics_history": [],
            "timings": {"fit_seconds": fit_entry["seconds"], "evaluate_seconds": evaluate_seconds,
                        "total_seconds": time.perf_counter() - started},
            "fit": fit_entry,
            "environment": environment(torch_device),
            "config_files": [str(f) for f in config_files],
            "bindings": list(bindings),
            "config": config_text,
            "operative_config": operative_config,
            "files": [records.STATE_FILE, records.CONFIG_FILE]
            + [name for name in OUTPUT_DIRS if (work_dir / name).is_dir()],
            records.STATE_DIGEST_FIELD: fitted[records.STATE_DIGEST_FIELD],
        }
        written = records.write_record(work_dir, record)
        shutil.rmtree(work_dir / CHECKPOINT_DIR, ignore_errors=True)  # only for resuming; state.npz holds the fit
        for leftover in (FIT_FILE, PARTIAL_METRICS_FILE):
            (work_dir / leftover).unlink(missing_ok=True)
        kept_existing, note = _finish(work_dir, final_dir)
        if kept_existing:
            return RunResult(final_dir, records.read_record(final_dir), reused=True, note=note)
        return RunResult(final_dir, written, reused=False, note=note)
