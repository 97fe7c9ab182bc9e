"""Building a run's objects from the config, scoring a fitted model, and re-scoring a finished run.

`runner` (a fresh run, or a rerun whose metric settings changed) and `dlbench evaluate` both go
through here, so a score means the same whichever command produced it. Re-scoring a finished run
reads its record as data (a config holding anything but bindings of registered configurables is
refused), rebuilds the model from its state file, and updates the record under the run's lock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

import gin
from dlbench import config, contract, records
from dlbench.errors import ConfigError, DlbenchError, RecordError
from dlbench.interfaces import GroundTruthDataset, Model
from dlbench.plugins import Plugins, Registration, get_plugins


@dataclass(frozen=True)
class ConfiguredMetric:
    name: str
    metric: Any
    registration: Registration
    settings: dict[str, str]  # the metric's bindings, as the record keeps them


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when there is a GPU; `cuda` without one is a user error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {requested}: no CUDA device is available here; use --device auto or cpu")
        try:
            device = torch.device(requested)
        except RuntimeError:
            device = None
        if device is None or (device.index is not None and device.index >= torch.cuda.device_count()):
            raise ConfigError(f"--device {requested!r} is not accepted; expected cuda or cuda:N with N < "
                              f"{torch.cuda.device_count()}")
        return device
    raise ConfigError(f"--device {requested!r} is not accepted; expected auto, cpu or cuda[:N]")


def build_dataset(plugins: Plugins, experiment: config.Experiment, device: torch.device) -> GroundTruthDataset:
    factory = plugins.datasets.get(experiment.dataset_name).factory
    return config.call_configured(factory, experiment.dataset_name, source=experiment.dataset_source, device=device)


def build_model(plugins: Plugins, experiment: config.Experiment) -> Model:
    """The configured model, checked to honour the plugin API before any work."""
    registration = plugins.models.get(experiment.model_name)
    model = config.call_configured(registration.factory, experiment.model_name)
    contract.check_model(model, registration, plugins.manager.get_plugin(registration.plugin))
    return model


def build_metrics(plugins: Plugins, names: Sequence[str]) -> list[ConfiguredMetric]:
    """Every named metric built from its bindings now, so a bad metric setting fails before any fit."""
    text = gin.config_str()
    built = []
    for name in names:
        registration = plugins.metrics.get(name)
        metric = config.call_configured(registration.factory, name)
        built.append(ConfiguredMetric(name, metric, registration, config.bindings_of(text, name)))
    return built


def set_evaluation_mode(model: Model) -> None:
    """Models with train/eval modes (dropout, batch norm) are scored in eval mode."""
    switch = getattr(model, "eval", None)
    if callable(switch):
        switch()


def evaluate_metrics(model: Model, dataset: GroundTruthDataset, metrics: Sequence[ConfiguredMetric], seed: int,
                     on_result: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """Score the model with each metric, each from its own generator seeded with `seed`, so that adding a metric
    never changes another's samples; under inference mode, with the model in eval mode."""
    set_evaluation_mode(model)
    results = {}
    for configured in metrics:
        generator = torch.Generator(device=dataset.device).manual_seed(seed)
        started = time.perf_counter()
        with torch.inference_mode():
            result = dict(configured.metric(model, dataset, generator=generator))
        result.setdefault("seconds", time.perf_counter() - started)
        result.update({"plugin": configured.registration.plugin,
                       "plugin_version": configured.registration.version,
                       "settings": configured.settings, "evaluation_seed": seed})
        results[configured.name] = records.to_jsonable(result)
        if on_result is not None:
            on_result(configured.name, results[configured.name])
    return results


def stale_metrics(recorded: Mapping[str, Any], metrics: Sequence[ConfiguredMetric], seed: int) -> list[str]:
    """Metrics the record lacks, or scored with other settings or another seed than asked for now."""
    stale = []
    for configured in metrics:
        entry = recorded.get(configured.name)
        if entry is None or entry.get("settings") != configured.settings or entry.get("evaluation_seed") != seed:
            stale.append(configured.name)
    return stale


def merge_results(metrics: dict[str, Any], history: list[dict[str, Any]], results: dict[str, Any]
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """New results replace old ones of the same metric; each replaced result moves to the history
    with the time it was replaced, so no score or its provenance is ever dropped."""
    replaced_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    moved = [{"metric": name, "replaced_at": replaced_at, "result": metrics[name]}
             for name in results if name in metrics]
    return {**metrics, **results}, [*history, *moved]


def merged_record(run_dir: Path, results: dict[str, Any], config_text: str | None = None) -> dict[str, Any]:
    """A finished record, read again now, with new results in and replaced ones moved to the history;
    `config_text` replaces the stored config when the metric settings changed. Nothing is written."""
    record = load_record(run_dir)
    record["metrics"], record["metrics_history"] = merge_results(record["metrics"], record["metrics_history"],
                                                                 results)
    if config_text is not None:
        record["config"] = config_text
    return record


def update_record(run_dir: Path, results: dict[str, Any], config_text: str | None = None) -> dict[str, Any]:
    """Read-modify-write of a finished record; the caller holds the run's lock, so no writer drops another's."""
    return records.write_record(run_dir, merged_record(run_dir, results, config_text))


def restore_state(model: Model, state_file: Path, device: torch.device, owner: Path, digest: str | None) -> None:
    """Load a state file into the model once it matches the digest `owner` (its record, or a partial run's fit.json)
    holds of it; a file that does not, that the model refuses, or that breaks it, is named in one line."""
    state = records.load_bound_state(state_file, owner, digest, device)
    try:
        model.load_state_dict(state)
    except DlbenchError as exc:
        raise RecordError(f"{state_file}: {exc}") from None
    except Exception as exc:  # a damaged or edited file, seen by the plugin's own code
        raise RecordError(f"{state_file}: does not fit model {model.name!r} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def registered_configurables(plugins: Plugins) -> set[str]:
    return {name for kind in ("models", "datasets", "metrics") for name in plugins.registries[kind].names()}


def load_record(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's record, checked as data: its schema and digest (records.read_record), and a config holding
    nothing but bindings of configurables registered here, naming the model the record names. Every command that
    reads a run goes through this, so a record can never make dlbench import or run anything."""
    record = records.read_record(run_dir)
    where = str(Path(run_dir) / records.RECORD_FILE)
    plugins = get_plugins()
    config.check_record_config(record["config"], where, registered_configurables(plugins))
    named = config.bindings_of(record["config"], "model").get("name")
    if named != repr(record["model"]["name"]):
        raise RecordError(f"{where}: config names model {named} but the record {record['model']['name']!r}; the "
                          "record was edited")
    return record


def parse_record_config(record: Mapping[str, Any], where: str, bindings: Sequence[str] = ()) -> config.Experiment:
    """Parse a checked record's config (load_record) and `bindings` on top as the current gin config."""
    gin.clear_config()
    try:
        gin.parse_config(record["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise RecordError(config.one_line(exc, where)) from None
    config.parse_bindings(bindings)
    config.finalize()
    return config.read_experiment()


def load_run(run_dir: str | Path, device: str = "auto", bindings: Sequence[str] = ()
             ) -> tuple[dict[str, Any], Model, GroundTruthDataset]:
    """Rebuild a finished run's fitted model and its dataset from its record and state file.
    The run's whole parsed config is restored (so settings of metrics the run did not score are
    kept), then `bindings` are applied on top."""
    run_dir = Path(run_dir)
    record = load_record(run_dir)
    plugins = get_plugins()
    experiment = parse_record_config(record, str(run_dir / records.RECORD_FILE), bindings)
    torch_device = resolve_device(device)
    dataset = build_dataset(plugins, experiment, torch_device)
    model = build_model(plugins, experiment)
    record_file = run_dir / records.RECORD_FILE
    restore_state(model, run_dir / records.STATE_FILE, torch_device, record_file,
                  records.bound_state_digest(record, str(record_file)))
    return record, model, dataset
