"""One run record read for the results index: refused unless it is strict JSON of a known schema whose digest
matches, then flattened into its run fields, its solutions' axis labels, their scores (one array per score), which
solutions failed (did not converge or diverged), and the facts that say at what scale the run was made.

A record of the legacy schema `dlbench.run/1` may lack a digest; it is read, but marked unverified, and the queries
leave it out unless asked to use it."""
from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlbench.errors import RecordError

if TYPE_CHECKING:
    import numpy as np

RECORD_FILE = "record.json"  # the name dlbench.records writes
# Records of the first schema, written before replicate_axes, fit_hash and digest, are read leniently: their start
# and seed axes are the replicates, the run id's suffix is the fit hash, and without a digest they are unverified.
LEGACY_SCHEMAS = frozenset({"dlbench.run/1"})
LEGACY_FIELDS = ("schema", "run_id", "model", "dataset", "seed", "metrics", "config", "operative_config")
DEFAULT_REPLICATE_AXES = ("start", "seed")
# The fields of a run that --where and --group accept beside the axis names; the first four tell experiments apart.
IDENTITY_FIELDS = ("model", "dataset", "source", "config_hash")
RUN_FIELDS = (*IDENTITY_FIELDS, "run_id", "plugin_version", "fit_hash")
# Names an axis may not take: they would read as a run field, or as a column of the results command's output.
RESERVED_NAMES = frozenset({*RUN_FIELDS, "run_dir", "plugin", "plugin_distribution", "run_seed", "n", "runs",
                            "failed", "unverified"})
AXIS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HEX = re.compile(r"[0-9a-f]+\Z")
# Per-solution scores by which a record says a solution failed: the linear solvers' convergence flag (0: not
# converged) and the training engine's divergence step (-1: never diverged).
CONVERGED_SCORE, DIVERGED_SCORE = "converged", "training.diverged_at_step"
NOT_CONVERGED, DIVERGED = "not converged", "diverged"
INT64 = 2 ** 63


@dataclass(frozen=True)
class RunFields:
    run_id: str
    model: str
    plugin: str | None
    plugin_distribution: str | None
    plugin_version: str | None
    dataset: str
    source: str
    config_hash: str
    fit_hash: str
    run_seed: Any


RUN_COLUMNS = tuple(RunFields.__dataclass_fields__)


@dataclass(frozen=True)
class RecordEntry:
    """A record flattened for the index: solution i is the i-th index of the axes in C order."""
    run: RunFields
    verified: bool  # False: a legacy record without a digest, whose contents nothing vouches for
    axes: dict[str, list[Any]]
    replicate_axes: tuple[str, ...]
    scores: dict[str, np.ndarray]  # score name → per-solution values, NaN where unknown
    failures: tuple[str | None, ...]  # per solution: NOT_CONVERGED, DIVERGED or None
    facts: dict[str, Any]

    @property
    def num_solutions(self) -> int:
        return math.prod(len(labels) for labels in self.axes.values())


def _refuse(path: Path, what: str, expected: str) -> RecordError:
    return RecordError(f"{path}: {what} is not accepted; expected {expected}")


def _parse(path: Path, data: bytes) -> dict[str, Any]:
    from dlbench.records import parse_record_json

    try:
        record = parse_record_json(data)
    except ValueError as exc:
        raise _refuse(path, f"the contents ({str(exc).splitlines()[0]})", "a JSON run record") from None
    if not isinstance(record, dict):
        raise _refuse(path, f"a JSON {type(record).__name__}", "a JSON object (a run record)")
    return record


def load_record(path: Path, data: bytes | None = None) -> tuple[dict[str, Any], bool]:
    """The record at `path` (its bytes `data`, when already read) and whether its digest vouches for it. Refused
    (RecordError naming the file) unless it is strict JSON of a known schema whose digest matches its contents,
    with every field its schema requires (dlbench.records.check_record; a legacy record: the fields the index
    needs, and a matching digest when it has one)."""
    from dlbench.records import DIGEST_FIELD, KNOWN_SCHEMAS, check_record, record_digest

    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise _refuse(path, f"the file ({exc.strerror})", "a readable run record") from None
    record = _parse(path, data)
    readable = sorted(KNOWN_SCHEMAS | LEGACY_SCHEMAS)
    if record.get("schema") not in readable:
        raise _refuse(path, f"schema {str(record.get('schema'))[:40]!r}", f"one of {', '.join(readable)}")
    if record["schema"] not in LEGACY_SCHEMAS:
        return check_record(record, str(path)), True
    if DIGEST_FIELD in record and record[DIGEST_FIELD] != record_digest(record):
        raise _refuse(path, f"digest {str(record[DIGEST_FIELD])[:24]}…",
                      "the digest of its contents (the record was changed after it was written)")
    missing = [name for name in LEGACY_FIELDS if name not in record]
    if missing:
        raise _refuse(path, f"a record without {', '.join(missing)}", f"the fields {', '.join(LEGACY_FIELDS)}")
    if not isinstance(record["metrics"], dict) or \
            not all(isinstance(result, dict) for result in record["metrics"].values()):
        raise _refuse(path, f"metrics = {json.dumps(record['metrics'])[:60]}", "a mapping of metric name to its scores")
    return record, DIGEST_FIELD in record


def _text_field(path: Path, record: dict[str, Any], *keys: str) -> str:
    value: Any = record
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise _refuse(path, f"field {'.'.join(keys)} = {value!r:.60}", "a non-empty string")
    return value


def _is_label(value: Any) -> bool:
    if isinstance(value, int):
        return -INT64 <= value < INT64  # what SQLite stores as an integer
    return isinstance(value, (str, float))


def _solution_axes(path: Path, record: dict[str, Any]) -> dict[str, list[Any]]:
    axes = record.get("solution_axes", {})
    if not isinstance(axes, dict):
        raise _refuse(path, f"solution_axes = {axes!r:.60}", "a mapping of axis name to a list of labels")
    for name, labels in axes.items():
        if not AXIS_NAME.match(name) or name in RESERVED_NAMES:
            raise _refuse(path, f"axis name {name[:40]!r}", "letters, digits and '_', and none of the run fields "
                          f"and output columns ({', '.join(sorted(RESERVED_NAMES))})")
        if not isinstance(labels, list) or not labels or not all(map(_is_label, labels)):
            raise _refuse(path, f"solution_axes.{name} = {labels!r:.60}", "a non-empty list of numbers or strings")
    return axes


def _replicate_axes(path: Path, record: dict[str, Any], axes: dict[str, list[Any]]) -> tuple[str, ...]:
    if "replicate_axes" not in record:
        return tuple(name for name in axes if name in DEFAULT_REPLICATE_AXES)
    replicates = record["replicate_axes"]
    if not isinstance(replicates, list) or not all(name in axes for name in replicates):
        raise _refuse(path, f"replicate_axes = {replicates!r:.60}",
                      f"a list of solution axis names ({', '.join(axes) or 'none'})")
    return tuple(replicates)


def _fit_hash(path: Path, record: dict[str, Any], run_id: str) -> str:
    if "fit_hash" not in record:
        return run_id.rsplit("-", 1)[-1]  # older records: the run id ends with the config hash
    fit_hash = record["fit_hash"]
    if not isinstance(fit_hash, str) or not HEX.match(fit_hash) or not run_id.endswith(fit_hash):
        raise _refuse(path, f"fit_hash = {fit_hash!r:.60}", f"a hex string that ends the run id {run_id!r}")
    return fit_hash


def _short_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]


def dataset_parameters(record: dict[str, Any]) -> dict[str, Any]:
    """The dataset's numeric parameters: what identifies its data (not file sizes or times, which differ between
    machines holding the same data)."""
    return {key: value for key, value in record["dataset"].items()
            if isinstance(value, (int, float)) and "bytes" not in key and "mtime" not in key}


def config_hash(record: dict[str, Any], axes: dict[str, list[Any]]) -> str:
    """A short hash of what makes runs comparable cells of one experiment: the model, its hyperparameters less
    the grid it was swept over (`betas`, `num_starts`: named after an axis, or equal to an axis's labels), and
    the dataset's parameters. Solutions with equal hashes and equal setting axes are replicates of one setting."""
    grid = {f"{axis}s" for axis in axes} | {f"num_{axis}s" for axis in axes}
    hyperparameters = record["model"].get("hyperparameters")
    if isinstance(hyperparameters, dict):
        hyperparameters = {key: value for key, value in hyperparameters.items()
                           if key not in grid and not any(value == labels for labels in axes.values())}
    else:
        hyperparameters = None
    return _short_hash({"model": record["model"]["name"], "dataset": dataset_parameters(record),
                        "hyperparameters": hyperparameters})


def _run_fields(path: Path, record: dict[str, Any], axes: dict[str, list[Any]]) -> RunFields:
    run_id = _text_field(path, record, "run_id")
    model = _text_field(path, record, "model", "name")
    plugin, distribution, version = (value if isinstance(value, str) else None
                                     for value in map(record["model"].get, ("plugin", "distribution", "version")))
    seed = record["seed"]
    return RunFields(run_id, model, plugin, distribution, version, _text_field(path, record, "dataset", "name"),
                     _text_field(path, record, "dataset", "source"), config_hash(record, axes),
                     _fit_hash(path, record, run_id), seed if _is_label(seed) and not isinstance(seed, bool) else None)


def _solution_scores(path: Path, record: dict[str, Any], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Every score with one value per solution, flattened; scores per run or per latent are not indexed."""
    from dlbench.summary import scalar_scores  # loads numpy and torch: only when a record is (re)read

    try:
        scores = scalar_scores(record)
    except (AttributeError, TypeError):  # a "values" that is not a mapping
        raise _refuse(path, "the metrics", "{metric: {score: finite number or nested list}}") from None
    # finite: the record's numbers were parsed within a float's range (parse_record_json)
    return {name: values.reshape(-1) for name, values in scores.items() if values.shape == shape}


def _failures(scores: dict[str, np.ndarray], count: int) -> tuple[str | None, ...]:
    converged = scores.get(CONVERGED_SCORE, [1.0] * count)
    diverged = scores.get(DIVERGED_SCORE, [-1.0] * count)
    return tuple(NOT_CONVERGED if c == 0 else DIVERGED if d >= 0 else None for c, d in zip(converged, diverged))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _run_command(record: dict[str, Any]) -> str | None:
    """The `dlbench run` that made the run, as its record states it (None: no config files recorded)."""
    files, bindings = record.get("config_files"), record.get("bindings")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        return None
    bindings = [b for b in bindings if isinstance(b, str)] if isinstance(bindings, list) else []
    return " ".join(["dlbench run", *map(shlex.quote, files), *(f"-p {shlex.quote(b)}" for b in bindings),
                     f"--seed {record['seed']}"])


def _facts(record: dict[str, Any], scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """What the record says about the scale it was made at: the training budget (hyperparameters counting steps or
    iterations), device, package versions, data, and the command that made it."""
    hyperparameters = record["model"].get("hyperparameters")
    hyperparameters = hyperparameters if isinstance(hyperparameters, dict) else {}
    environment = record.get("environment") if isinstance(record.get("environment"), dict) else {}
    packages = environment.get("packages") if isinstance(environment.get("packages"), dict) else {}
    return {
        "budget": {key: value for key, value in sorted(hyperparameters.items())
                   if ("steps" in key or "iterations" in key) and isinstance(value, int)
                   and not isinstance(value, bool)},
        "likelihood": _text(hyperparameters.get("likelihood")),
        "device": _text(environment.get("device")),
        "packages": {name: version for name, version in sorted(packages.items())
                     if name in ("dlbench", "torch") and isinstance(version, str)},
        "dataset_parameters": dataset_parameters(record),
        "command": _run_command(record),
        "scores": sorted(scores),
    }


def record_entry(path: Path, data: bytes | None = None) -> RecordEntry:
    """The record at `path` (its bytes `data`, when already read), flattened; see load_record for what is refused."""
    record, verified = load_record(path, data)
    axes = _solution_axes(path, record)
    run = _run_fields(path, record, axes)
    shape = tuple(len(labels) for labels in axes.values())
    scores = _solution_scores(path, record, shape)
    return RecordEntry(run, verified, axes, _replicate_axes(path, record, axes), scores,
                       _failures(scores, math.prod(shape)), _facts(record, scores))
