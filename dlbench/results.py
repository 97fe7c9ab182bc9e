"""The results store. Run records (`record.json`) are the source of truth; an SQLite index over them,
`RESULT_DIR/.dlbench-index.sqlite`, holds one row per solution (each index of a record's solution
axes) with its run, model, dataset, axis values and scalar scores, so that grouped queries over
thousands of solutions need not re-read every record.

The index is updated on demand: a record whose path, size and mtime are unchanged is not re-read, a
removed record's rows go, and every update is one transaction (a first build or `rebuild` is written
to a temporary file and renamed), so a crash never leaves a half-built index. A record that cannot be
trusted (unknown schema, digest mismatch, missing or malformed fields) is refused with a one-line
warning naming its file, and the others are still indexed.

    dlbench results RESULT_DIRS... [--where 'dataset=shapes3d and beta>=8'] [--group beta,lambda]
                    [--metrics mig,sap] [--format table|csv|json] [--rebuild]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dlbench.errors import ConfigError, RecordError

# dlbench.records and dlbench.summary load torch, so they are imported where a record is (re)read or a table
# printed: a query answered from an up-to-date index (csv, json) never waits for torch.
RECORD_FILE = "record.json"  # the name dlbench.records writes

INDEX_FILE = ".dlbench-index.sqlite"
# Bumped when the index layout changes; an index of another version is rebuilt from the records.
INDEX_VERSION = "3"
# Records of the first schema, written before replicate_axes, fit_hash and digest, are read leniently:
# their start and seed axes are the replicates, the run id's suffix is the fit hash, a digest is optional.
LEGACY_SCHEMAS = frozenset({"dlbench.run/1"})
LEGACY_FIELDS = ("schema", "run_id", "model", "dataset", "seed", "metrics", "config", "operative_config")
DEFAULT_REPLICATE_AXES = ("start", "seed")


@dataclass(frozen=True)
class HeadlineMetric:
    alias: str
    label: str
    scores: tuple[str, ...]  # candidate score names; a solution's first present one is its value
    higher_is_better: bool


# The one table of headline metrics for queries, tables, figures and the report.
HEADLINE_METRICS = {metric.alias: metric for metric in (
    HeadlineMetric("mig", "MIG", ("mig.mig",), True),
    HeadlineMetric("sap", "SAP", ("sap_score.sap", "sap"), True),
    HeadlineMetric("i_m", "I_m", ("i_m.i_m", "i_m"), True),
    HeadlineMetric("reconstruction", "reconstruction", ("training.reconstruction", "nll"), False),
)}

# Per-run columns of every solution row, in order; `run_dir` is stored relative to the results directory.
RUN_COLUMNS = ("run_id", "run_dir", "model", "plugin", "plugin_distribution", "plugin_version", "dataset",
               "source", "config_hash", "fit_hash", "run_seed")
# Run columns that --where and --group accept, beside the axis names.
RUN_FIELDS = ("model", "dataset", "source", "config_hash", "run_id", "plugin_version", "fit_hash")
# Axis and score names become SQL column names, so they must be plain (no quotes, no spaces).
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
HEX = re.compile(r"[0-9a-f]+\Z")
AXIS_PREFIX, SCORE_PREFIX = "axis:", "score:"

_SCHEMA_SQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                      run_id TEXT, axes TEXT, replicate_axes TEXT, problem TEXT, indexed INTEGER NOT NULL);
CREATE TABLE solutions (record_path TEXT NOT NULL, solution INTEGER NOT NULL, run_id TEXT, run_dir TEXT,
                        model TEXT, plugin TEXT, plugin_distribution TEXT, plugin_version TEXT, dataset TEXT,
                        source TEXT, config_hash TEXT, fit_hash TEXT, run_seed, PRIMARY KEY (record_path, solution));
"""


def _quoted(column: str) -> str:
    # Only run columns and PLAIN_NAME-checked names (with a prefix) reach here: no quote can occur.
    return f'"{column}"'


# ---------------------------------------------------------------------------------------------------
# Reading and validating one record


@dataclass(frozen=True)
class RecordRows:
    """One record flattened: its solution rows (run columns, then axis values, then scores)."""
    run_id: str
    axes: tuple[str, ...]
    replicate_axes: tuple[str, ...]
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    notes: tuple[str, ...]


def _refuse(path: Path, what: str, expected: str) -> RecordError:
    return RecordError(f"{path}: {what} is not accepted; expected {expected}")


def _text_field(path: Path, record: dict[str, Any], *keys: str) -> str:
    value: Any = record
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise _refuse(path, f"field {'.'.join(keys)} = {value!r:.60}", "a non-empty string")
    return value


def _solution_axes(path: Path, record: dict[str, Any]) -> dict[str, list[Any]]:
    axes = record.get("solution_axes", {})
    if not isinstance(axes, dict):
        raise _refuse(path, f"solution_axes = {axes!r:.60}", "a mapping of axis name to a list of labels")
    for name, labels in axes.items():
        if not PLAIN_NAME.match(name):
            raise _refuse(path, f"axis name {name!r}", "letters, digits, '_', '.' or '-'")
        if not isinstance(labels, list) or not labels or \
                not all(isinstance(label, (str, int, float)) for label in labels):
            raise _refuse(path, f"solution_axes.{name} = {labels!r:.60}",
                          "a non-empty list of numbers or strings")
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


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON")


def config_hash(record: dict[str, Any], axes: dict[str, list[Any]]) -> str:
    """A short hash of what makes runs comparable cells of one experiment: the model, its hyperparameters
    less the grid it was swept over (`betas`, `num_starts`: named after an axis), and the dataset's
    numeric parameters (not file sizes or times, which differ between machines holding the same data).
    Solutions with equal hashes and equal setting axes are replicates of one setting."""
    grid = {f"{axis}s" for axis in axes} | {f"num_{axis}s" for axis in axes}
    hyperparameters = record["model"].get("hyperparameters")
    data = {key: value for key, value in record["dataset"].items()
            if isinstance(value, (int, float)) and "bytes" not in key and "mtime" not in key}
    payload = {"model": record["model"]["name"], "dataset": data,
               "hyperparameters": {key: value for key, value in (hyperparameters or {}).items() if key not in grid}
               if isinstance(hyperparameters, dict) else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]


def load_record(path: Path) -> dict[str, Any]:
    """The record at `path`, refused (RecordError naming the file) unless it is JSON of a known schema
    whose digest matches its contents, with every field its schema requires (dlbench.records.check_record;
    a legacy record: the fields the index needs, and the digest if it has one)."""
    from dlbench.records import KNOWN_SCHEMAS, check_record, record_digest

    try:
        record = json.loads(Path(path).read_bytes(), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _refuse(path, f"the contents ({str(exc).splitlines()[0]})", "a JSON run record") from None
    if not isinstance(record, dict):
        raise _refuse(path, f"a JSON {type(record).__name__}", "a JSON object (a run record)")
    readable = sorted(KNOWN_SCHEMAS | LEGACY_SCHEMAS)
    if record.get("schema") not in readable:
        raise _refuse(path, f"schema {record.get('schema')!r}", f"one of {', '.join(readable)}")
    if record["schema"] not in LEGACY_SCHEMAS:
        return check_record(record, str(path))
    if "digest" in record and record["digest"] != record_digest(record):
        raise _refuse(path, f"digest {str(record['digest'])[:24]}…",
                      "the digest of its contents (the record was changed after it was written)")
    missing = [name for name in LEGACY_FIELDS if name not in record]
    if missing:
        raise _refuse(path, f"a record without {', '.join(missing)}", f"the fields {', '.join(LEGACY_FIELDS)}")
    if not isinstance(record["metrics"], dict) or \
            not all(isinstance(result, dict) for result in record["metrics"].values()):
        raise _refuse(path, f"metrics = {json.dumps(record['metrics'])[:60]}", "a mapping of metric name to its scores")
    return record


def record_rows(path: Path, run_dir: str) -> RecordRows:
    """The solution rows of the record at `path` (see load_record for what is refused)."""
    from dlbench.summary import scalar_scores

    record = load_record(path)
    run_id = _text_field(path, record, "run_id")
    axes = _solution_axes(path, record)
    model_name = _text_field(path, record, "model", "name")
    plugin, distribution, version = (value if isinstance(value, str) else None
                                     for value in map(record["model"].get, ("plugin", "distribution", "version")))
    run_values = (run_id, run_dir, model_name, plugin, distribution, version,
                  _text_field(path, record, "dataset", "name"), _text_field(path, record, "dataset", "source"),
                  config_hash(record, axes), _fit_hash(path, record, run_id),
                  record["seed"] if isinstance(record["seed"], (int, float, str)) else None)
    replicate_axes = _replicate_axes(path, record, axes)
    shape = tuple(len(labels) for labels in axes.values())
    try:
        all_scores = scalar_scores(record)
    except (AttributeError, TypeError):  # a metric result whose "values" is not a mapping
        raise _refuse(path, "the metrics", "{metric: {score: number or nested list}}") from None
    scores, notes = {}, []
    for name, values in all_scores.items():
        if values.shape != shape:
            continue  # a score per run or per latent, not per solution
        if not PLAIN_NAME.match(name):
            notes.append(f"{path}: score {name!r} is not indexed; expected letters, digits, '_', '.' or '-'")
            continue
        scores[name] = values.reshape(-1)
    columns = (*RUN_COLUMNS, *(AXIS_PREFIX + name for name in axes), *(SCORE_PREFIX + name for name in scores))
    rows = []
    for flat, index in enumerate(itertools.product(*(range(length) for length in shape))):
        labels = tuple(axes[name][position] for name, position in zip(axes, index))
        values = tuple(None if math.isnan(v[flat]) else float(v[flat]) for v in scores.values())
        rows.append((*run_values, *labels, *values))
    return RecordRows(run_id, tuple(axes), replicate_axes, columns, rows, tuple(notes))


# ---------------------------------------------------------------------------------------------------
# The index of one results directory


def _record_files(result_dir: Path) -> dict[str, tuple[int, int]]:
    """Relative path → (size, mtime_ns) of every finished record under `result_dir`."""
    found = {}
    for path in sorted(result_dir.rglob(RECORD_FILE)):
        relative = path.relative_to(result_dir)
        if any(part.endswith(".partial") for part in relative.parts[:-1]) or not path.is_file():
            continue  # a run still being built
        stat = path.stat()
        found[relative.as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def _connect(path: Path | str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit, so DDL (new columns) joins them too.
    return sqlite3.connect(str(path), isolation_level=None, timeout=30)


def _create_schema(connection: sqlite3.Connection) -> None:
    connection.executescript(_SCHEMA_SQL)
    connection.execute("INSERT INTO meta VALUES ('version', ?)", (INDEX_VERSION,))
    connection.execute("CREATE INDEX solutions_by_record ON solutions (record_path)")


def _columns(connection: sqlite3.Connection) -> list[str]:
    return [row[1] for row in connection.execute("PRAGMA table_info(solutions)")]


def _sync(connection: sqlite3.Connection, result_dir: Path, found: dict[str, tuple[int, int]]) -> None:
    """Bring the index in line with the records found, in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        known = {path: (size, mtime) for path, size, mtime in
                 connection.execute("SELECT path, size, mtime_ns FROM records")}
        columns = set(_columns(connection))
        for path, stamp in [*((path, None) for path in known.keys() - found.keys()), *found.items()]:
            if stamp is not None and known.get(path) == stamp:
                continue
            connection.execute("DELETE FROM solutions WHERE record_path = ?", (path,))
            connection.execute("DELETE FROM records WHERE path = ?", (path,))
            if stamp is None:
                continue
            try:
                indexed = record_rows(result_dir / path, str(Path(path).parent.as_posix()))
            except RecordError as exc:
                connection.execute("INSERT INTO records VALUES (?, ?, ?, NULL, NULL, NULL, ?, 0)",
                                   (path, *stamp, str(exc)))
                continue
            for column in indexed.columns:
                if column not in columns:
                    connection.execute(f"ALTER TABLE solutions ADD COLUMN {_quoted(column)}")
                    columns.add(column)
            names = ", ".join(_quoted(c) for c in ("record_path", "solution", *indexed.columns))
            marks = ", ".join("?" * (len(indexed.columns) + 2))
            connection.executemany(f"INSERT INTO solutions ({names}) VALUES ({marks})",
                                   ((path, flat, *row) for flat, row in enumerate(indexed.rows)))
            connection.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                               (path, *stamp, indexed.run_id, json.dumps(indexed.axes),
                                json.dumps(indexed.replicate_axes),
                                "\n".join(indexed.notes) or None))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _index_version(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _build_fresh(result_dir: Path, found: dict[str, tuple[int, int]]) -> sqlite3.Connection:
    """Build the whole index in a temporary file and rename it into place; in memory (for this process
    only) where the directory is not writable."""
    index_path = result_dir / INDEX_FILE
    try:
        handle, temp_name = tempfile.mkstemp(dir=result_dir, prefix=f".{INDEX_FILE}.", suffix=".tmp")
    except OSError:
        connection = _connect(":memory:")
        _create_schema(connection)
        _sync(connection, result_dir, found)
        return connection
    os.close(handle)
    try:
        with closing(_connect(temp_name)) as connection:
            _create_schema(connection)
            _sync(connection, result_dir, found)
        os.replace(temp_name, index_path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return _connect(index_path)


def open_index(result_dir: str | Path, rebuild: bool = False) -> tuple[sqlite3.Connection, list[str]]:
    """The up-to-date index of `result_dir` (built, updated or, with `rebuild`, built afresh) and the
    warnings about records it refused or only partly indexed, one line each."""
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise ConfigError(f"results directory {str(result_dir)!r} is not accepted; expected a directory "
                          "holding run directories")
    found = _record_files(result_dir)
    index_path = result_dir / INDEX_FILE
    notices = []
    connection = None
    if not rebuild and index_path.is_file():
        connection = _connect(index_path)
        if _index_version(connection) == INDEX_VERSION:
            try:
                _sync(connection, result_dir, found)
            except sqlite3.DatabaseError as exc:
                notices.append(f"{index_path}: unreadable index ({exc}); rebuilt it from the records")
                connection.close()
                connection = None
        else:
            connection.close()
            connection = None
    if connection is None:
        connection = _build_fresh(result_dir, found)
        if not (result_dir / INDEX_FILE).is_file():
            notices.append(f"{result_dir}: not writable; indexed its records in memory for this command only")
    problems = [row[0] for row in connection.execute(
        "SELECT problem FROM records WHERE problem IS NOT NULL ORDER BY path")]
    return connection, notices + [line for problem in problems for line in problem.split("\n")]


# ---------------------------------------------------------------------------------------------------
# --where


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: float | str


_WHERE_TOKEN = re.compile(r"""\s*(?:(?P<operator><=|>=|!=|=|<|>)|'(?P<single>[^']*)'|"(?P<double>[^"]*)"
                             |(?P<bare>[A-Za-z0-9_.+\-:]+))""", re.VERBOSE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\Z")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
WHERE_SYNTAX = "FIELD OP VALUE clauses joined by 'and' (OP one of = != < <= > >=; VALUE a number or a string)"


def _where_tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text.rstrip()):
        match = _WHERE_TOKEN.match(text, position)
        if not match:
            raise ConfigError(f"--where {text!r}: {text[position:].strip()[:20]!r} is not accepted; "
                              f"expected {WHERE_SYNTAX}")
        kind = match.lastgroup
        tokens.append(("quoted" if kind in ("single", "double") else kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_where(text: str) -> list[Condition]:
    """`field op value [and field op value ...]`; values are numbers, bare words or quoted strings. Only
    syntax is checked here; fields are checked against the indexes by Results."""
    tokens = _where_tokens(text or "")

    def take(index: int, accepted: tuple[str, ...], what: str) -> tuple[str, str]:
        if index < len(tokens) and tokens[index][0] in accepted:
            return tokens[index]
        shown = repr(tokens[index][1]) if index < len(tokens) else "the end"
        raise ConfigError(f"--where {text!r}: {shown} is not accepted; expected {what} ({WHERE_SYNTAX})")

    conditions = []
    index = 0
    while index < len(tokens):
        if conditions:
            if take(index, ("bare",), "'and'")[1].lower() != "and":
                take(index, (), "'and'")
            index += 1
        field = take(index, ("bare",), "a field name")[1]
        if not _FIELD.match(field) or field.lower() == "and":
            take(index, (), "a field name")
        operator = take(index + 1, ("operator",), "an operator")[1]
        kind, raw = take(index + 2, ("bare", "quoted"), "a value")
        value: float | str = float(raw) if kind == "bare" and _NUMBER.match(raw) else raw
        conditions.append(Condition(field, operator, value))
        index += 3
    return conditions


def where_sql(conditions: Sequence[Condition], available: dict[str, str | None]) -> tuple[str, list[Any]]:
    """SQL for the conditions (values only ever as parameters) given the accepted fields' column
    expressions (None: the field exists in another index but not this one, so it never matches)."""
    clauses, parameters = [], []
    for condition in conditions:
        if condition.field not in available:
            raise ConfigError(f"--where field {condition.field!r} is not accepted; expected one of: "
                              f"{', '.join(sorted(available))}")
        column = available[condition.field]
        value = condition.value
        if condition.field in RUN_FIELDS and isinstance(value, float):
            value = _raw_number(value)  # run fields are text: fit_hash=1234 means the string
        clauses.append(f"{column if column else 'NULL'} {condition.operator} ?")
        parameters.append(value)
    return " AND ".join(clauses) or "1", parameters


def _raw_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


# ---------------------------------------------------------------------------------------------------
# Queries over one or more results directories


@dataclass(frozen=True)
class Solution:
    """One solution of one run, with the scores a query asked for (NaN where the run has none)."""
    run_id: str
    run_dir: Path
    model: str
    plugin: str | None
    plugin_distribution: str | None
    plugin_version: str | None
    dataset: str
    source: str
    config_hash: str
    fit_hash: str
    run_seed: Any
    replicate_axes: tuple[str, ...]
    axes: dict[str, Any]
    scores: dict[str, float]

    @property
    def setting(self) -> tuple[tuple[str, Any], ...]:
        """The axis values that are settings, not replicates: (("beta", 4.0), ("lambda", 2.0))."""
        return tuple((name, value) for name, value in self.axes.items() if name not in self.replicate_axes)


@dataclass(frozen=True)
class Group:
    key: tuple[Any, ...]
    count: int  # solutions in the group: the replicate count when every setting field is grouped on
    statistics: dict[str, tuple[float, float, int]]  # metric → (mean, std with ddof = 0, known values)
    run_ids: tuple[str, ...]


@dataclass
class _Index:
    result_dir: Path
    connection: sqlite3.Connection
    columns: set[str]
    excluded: list[str]  # record paths of runs already found earlier (the same run id): never counted twice


class Results:
    """The indexed records of one or more results directories. Use as a context manager."""

    def __init__(self, result_dirs: Sequence[str | Path], rebuild: bool = False):
        if not result_dirs:
            raise ConfigError("no results directory is not accepted; expected at least one RESULT_DIR")
        self.result_dirs = [Path(d) for d in result_dirs]
        self.warnings: list[str] = []
        self._indexes: list[_Index] = []
        first_seen: dict[str, Path] = {}
        try:
            for result_dir in self.result_dirs:
                connection, warnings = open_index(result_dir, rebuild)
                self.warnings += warnings
                index = _Index(result_dir, connection, set(_columns(connection)), [])
                self._indexes.append(index)
                for path, run_id in connection.execute(
                        "SELECT path, run_id FROM records WHERE indexed = 1 ORDER BY path"):
                    kept = first_seen.setdefault(run_id, result_dir / path)
                    if kept != result_dir / path:
                        index.excluded.append(path)
                        self.warnings.append(f"{result_dir / path}: run {run_id} is also at {kept}; counted once, "
                                             "from there")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for index in self._indexes:
            index.connection.close()
        self._indexes = []

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _names(self, prefix: str) -> list[str]:
        return sorted({c[len(prefix):] for index in self._indexes for c in index.columns if c.startswith(prefix)})

    @property
    def axis_names(self) -> list[str]:
        return self._names(AXIS_PREFIX)

    @property
    def score_names(self) -> list[str]:
        return self._names(SCORE_PREFIX)

    @property
    def fields(self) -> list[str]:
        """What --where and --group accept."""
        return sorted({*RUN_FIELDS, *self.axis_names})

    def metric_scores(self, metrics: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each requested metric (a headline alias or a raw "metric.score") → its candidate scores."""
        known = self.score_names
        resolved = {}
        for name in metrics:
            if name in HEADLINE_METRICS:
                resolved[name] = HEADLINE_METRICS[name].scores
            elif name in known:
                resolved[name] = (name,)
            else:
                raise ConfigError(f"metric {name!r} is not accepted; expected one of: "
                                  f"{', '.join([*HEADLINE_METRICS, *known])}")
        return resolved

    def check_fields(self, names: Sequence[str], option: str) -> None:
        unknown = [name for name in names if name not in self.fields]
        if unknown:
            raise ConfigError(f"{option} field {unknown[0]!r} is not accepted; expected one of: "
                              f"{', '.join(self.fields)}")

    def _field_sql(self, index: _Index) -> dict[str, str | None]:
        """Field → its column in `index` (None: an axis only other indexes have, which never matches)."""
        available: dict[str, str | None] = {name: f"s.{_quoted(name)}" for name in RUN_FIELDS}
        available.update({name: f"s.{_quoted(AXIS_PREFIX + name)}" if AXIS_PREFIX + name in index.columns else None
                          for name in self.axis_names})
        return available

    def _filter(self, index: _Index, conditions: Sequence[Condition]) -> tuple[str, list[Any]]:
        """FROM … WHERE … of the solutions of `index` matching the conditions, and its parameters."""
        condition_sql, parameters = where_sql(conditions, self._field_sql(index))
        if index.excluded:
            condition_sql += f" AND s.record_path NOT IN ({', '.join('?' * len(index.excluded))})"
            parameters = [*parameters, *index.excluded]
        return (f"FROM solutions AS s JOIN records AS r ON r.path = s.record_path WHERE {condition_sql}",
                parameters)

    def _metric_sql(self, index: _Index, candidates: tuple[str, ...]) -> str:
        """The first of the candidate scores this index has, per solution (NULL where none)."""
        columns = [f"s.{_quoted(SCORE_PREFIX + name)}" for name in candidates if SCORE_PREFIX + name in index.columns]
        if not columns:
            return "NULL"
        return columns[0] if len(columns) == 1 else f"COALESCE({', '.join(columns)})"

    def solutions(self, where: str = "", metrics: Sequence[str] = tuple(HEADLINE_METRICS)) -> list[Solution]:
        """The solutions matching `where`, each with the requested metrics (NaN where it has none). A run
        found in two places (the same run id) is counted once, from the first."""
        conditions = parse_where(where)
        self.check_fields([c.field for c in conditions], "--where")
        wanted = self.metric_scores(metrics)
        solutions = []
        for index in self._indexes:
            axis_columns = sorted(c for c in index.columns if c.startswith(AXIS_PREFIX))
            selected = ", ".join([*(f"s.{_quoted(c)}" for c in RUN_COLUMNS), "r.axes", "r.replicate_axes",
                                  *(f"s.{_quoted(c)}" for c in axis_columns),
                                  *(self._metric_sql(index, candidates) for candidates in wanted.values())])
            source, parameters = self._filter(index, conditions)
            decoded: dict[tuple[str, str], tuple[list[str], tuple[str, ...]]] = {}  # JSON decoded once per record
            offset = len(RUN_COLUMNS) + 2
            for row in index.connection.execute(f"SELECT {selected} {source} ORDER BY s.record_path, s.solution",
                                                parameters):
                run = dict(zip(RUN_COLUMNS, row))
                key = (row[offset - 2], row[offset - 1])
                if key not in decoded:
                    decoded[key] = (json.loads(key[0]), tuple(json.loads(key[1])))
                axis_order, replicate_axes = decoded[key]
                labels = dict(zip((c[len(AXIS_PREFIX):] for c in axis_columns), row[offset:]))
                values = row[offset + len(axis_columns):]
                solutions.append(Solution(
                    **{**run, "run_dir": index.result_dir / run["run_dir"]}, replicate_axes=replicate_axes,
                    axes={name: labels[name] for name in axis_order},
                    scores={name: float("nan") if v is None else float(v) for name, v in zip(wanted, values)}))
        return solutions

    def setting_fields(self, where: str = "") -> list[str]:
        """model, dataset, source, config hash, then every axis that is a setting (not a replicate) of the
        records with solutions matching `where`, in first-seen order: what tells replicates of one setting
        from different settings."""
        conditions = parse_where(where)
        self.check_fields([c.field for c in conditions], "--where")
        axes: dict[str, None] = {}
        for index in self._indexes:
            source, parameters = self._filter(index, conditions)
            for axis_json, replicate_json in index.connection.execute(
                    f"SELECT DISTINCT r.axes, r.replicate_axes {source} ORDER BY r.path", parameters):
                replicates = json.loads(replicate_json)
                axes.update(dict.fromkeys(name for name in json.loads(axis_json) if name not in replicates))
        return ["model", "dataset", "source", "config_hash", *axes]

    def groups(self, where: str = "", group_by: Sequence[str] = (), metrics: Sequence[str] = tuple(HEADLINE_METRICS)
               ) -> list[Group]:
        """Per group of the solutions matching `where` (sharing the `group_by` fields' values): each
        metric's mean, standard deviation (ddof = 0) and count of known values, computed in SQL (two
        passes, so the deviations are from the group's own mean) and combined exactly across indexes."""
        conditions = parse_where(where)
        self.check_fields([*(c.field for c in conditions), *group_by], "--where/--group")
        wanted = self.metric_scores(metrics)
        partial: dict[tuple[Any, ...], list[Any]] = {}
        for index in self._indexes:
            fields = self._field_sql(index)
            keys = [fields[name] or "NULL" for name in group_by]
            key_names = [f"k{i}" for i in range(len(keys))]
            metric_names = [f"m{i}" for i in range(len(wanted))]
            source, parameters = self._filter(index, conditions)
            partition = f"PARTITION BY {', '.join(key_names)}" if key_names else ""
            selected = [*(f"{k} AS {n}" for k, n in zip(keys, key_names)), "s.run_id",
                        *(f"{self._metric_sql(index, c)} AS {m}" for c, m in zip(wanted.values(), metric_names))]
            deviations = [f"{m} - AVG({m}) OVER ({partition}) AS d{m}" for m in metric_names]
            aggregates = [*key_names, "COUNT(*)", "json_group_array(DISTINCT run_id)",
                          *(f"COUNT({m}), AVG({m}), SUM(d{m} * d{m})" for m in metric_names)]
            query = (f"WITH base AS (SELECT {', '.join(selected)} {source}), "
                     f"centred AS (SELECT {', '.join(['*', *deviations])} FROM base) "
                     f"SELECT {', '.join(aggregates)} FROM centred"
                     + (f" GROUP BY {', '.join(key_names)}" if key_names else ""))
            for row in index.connection.execute(query, parameters):
                key = tuple(row[:len(keys)])
                count, run_ids = row[len(keys)], json.loads(row[len(keys) + 1])
                moments = [tuple(row[len(keys) + 2 + 3 * i: len(keys) + 5 + 3 * i]) for i in range(len(wanted))]
                if key not in partial:
                    partial[key] = [0, set(), [(0, 0.0, 0.0)] * len(wanted)]
                entry = partial[key]
                entry[0] += count
                entry[1].update(run_ids)
                entry[2] = [_combined(a, b) for a, b in zip(entry[2], moments)]
        groups = []
        for key in sorted(partial, key=lambda k: tuple(_sort_key(v) for v in k)):
            count, run_ids, moments = partial[key]
            if count == 0:
                continue  # an aggregate without GROUP BY over no rows
            statistics = {name: (mean, math.sqrt(squares / known), known) if known else (math.nan, math.nan, 0)
                          for name, (known, mean, squares) in zip(wanted, moments)}
            groups.append(Group(key, count, statistics, tuple(sorted(run_ids))))
        return groups


def _combined(first: tuple[int, float, float], second: tuple[Any, Any, Any]) -> tuple[int, float, float]:
    """(count, mean, sum of squared deviations) of two disjoint sets of values, exactly (Chan et al.)."""
    count_a, mean_a, squares_a = first
    count_b, mean_b, squares_b = second[0], second[1] or 0.0, second[2] or 0.0
    if count_b == 0:
        return first
    if count_a == 0:
        return count_b, mean_b, squares_b
    count = count_a + count_b
    delta = mean_b - mean_a
    return count, mean_a + delta * count_b / count, squares_a + squares_b + delta * delta * count_a * count_b / count


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value)) if value is not None else (2, "")


# ---------------------------------------------------------------------------------------------------
# Output


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_mean_std(mean: float, std: float, digits: int = 4) -> str:
    return "-" if math.isnan(mean) else f"{mean:.{digits}g} ± {std:.{digits}g}"


def format_groups(groups: Sequence[Group], group_by: Sequence[str], metrics: Sequence[str], style: str) -> str:
    if style == "json":
        payload = [{"group": dict(zip(group_by, g.key)), "n": g.count, "runs": list(g.run_ids),
                    "metrics": {m: {"mean": _json_number(mean), "std": _json_number(std), "n": n}
                                for m, (mean, std, n) in g.statistics.items()}} for g in groups]
        return json.dumps(payload, indent=1)
    if style == "csv":
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([*group_by, "n", *(f"{m}_{part}" for m in metrics for part in ("mean", "std", "n"))])
        for g in groups:
            writer.writerow([*("" if v is None else v for v in g.key), g.count,
                             *("" if isinstance(x, float) and math.isnan(x) else x
                               for m in metrics for x in g.statistics[m])])
        return stream.getvalue().rstrip("\n")
    rows = []
    for g in groups:
        cells = []
        for m in metrics:
            mean, std, known = g.statistics[m]
            text = format_mean_std(mean, std)
            cells.append(text if known in (0, g.count) else f"{text} (n={known})")
        rows.append([*(_cell(v) for v in g.key), g.count, *cells])
    from dlbench.summary import format_table

    return format_table([*group_by, "n", *metrics], rows)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _cmd_results(args: argparse.Namespace) -> int:
    with Results(args.result_dirs, rebuild=args.rebuild) as results:
        metrics = _names(args.metrics) or list(HEADLINE_METRICS)
        group_by = _names(args.group) or results.setting_fields(args.where)
        groups = results.groups(args.where, group_by, metrics)
        if not args.metrics:  # only the headline metrics these solutions have
            metrics = [m for m in metrics if any(g.statistics[m][2] for g in groups)]
            groups = [Group(g.key, g.count, {m: g.statistics[m] for m in metrics}, g.run_ids) for g in groups]
        for warning in results.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(format_groups(groups, group_by, metrics, args.format))
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "results", help="query run records: mean ± std over replicates per group, from an SQLite index",
        description="Index the run records under RESULT_DIRS (kept in RESULT_DIR/.dlbench-index.sqlite, "
                    "updated incrementally) and print each group's mean ± std (ddof = 0) over its solutions "
                    "and their count n (the replicate count when every setting is grouped on, as by default).")
    parser.add_argument("result_dirs", nargs="+", metavar="RESULT_DIR", help="directories holding run directories")
    parser.add_argument("--where", default="", help="e.g. 'dataset=shapes3d and beta>=8'; fields: axis names, "
                        f"{', '.join(RUN_FIELDS)}; {WHERE_SYNTAX}")
    parser.add_argument("--group", help="comma-separated fields (default: model, dataset, source and every "
                        "setting axis)")
    parser.add_argument("--metrics", help=f"comma-separated aliases ({', '.join(HEADLINE_METRICS)}) or raw "
                        "'metric.score' names (default: the headline metrics present)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the indexes from the records")
    parser.set_defaults(handler=_cmd_results)
