"""Queries over the indexes of one or more results directories: the solutions matching a --where, and groups of
them with each metric's mean, standard deviation and count, computed in SQL and combined exactly across
directories. The one grouping path `dlbench results`, the leaderboard and the report share.

Axis labels and scores are read from the long tables by name, as parameters, so a query's shape never depends on
what a record holds. Unverified records (no digest) are left out unless `include_unverified`; a run found in two
places (the same run id) is counted once, from the first."""
from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dlbench.errors import ConfigError
from dlbench.results.headline import HEADLINE_METRICS
from dlbench.results.index import open_index
from dlbench.results.reading import RUN_COLUMNS, RUN_FIELDS, RunFields
from dlbench.results.statistics import NO_VALUES, Moments, combined, mean_std_count
from dlbench.results.where import Condition, where_sql
from dlbench.results.where import conditions as parsed

Where = str | Sequence[Condition]


@dataclass(frozen=True)
class RunInfo(RunFields):
    """One indexed run: where its record is, whether a digest vouches for it, and the facts of its scale."""
    run_dir: Path
    verified: bool
    axes: dict[str, list[Any]]
    replicate_axes: tuple[str, ...]
    facts: dict[str, Any]


@dataclass(frozen=True)
class Solution(RunFields):
    """One solution of one run, with the scores a query asked for (NaN where the run has none)."""
    run_dir: Path
    verified: bool
    failure: str | None  # "not converged" or "diverged", as its record says
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
    failed: int = 0  # solutions their records say did not converge or diverged
    failures: tuple[str, ...] = ()  # which of those
    unverified: int = 0  # solutions from records without a digest (only with include_unverified)


@dataclass
class _Index:
    result_dir: Path
    connection: sqlite3.Connection
    excluded: list[str]  # record paths of runs already found earlier (the same run id): never counted twice


class _Parameters(dict):
    """Named SQL parameters: calling it with a value returns the value's placeholder."""

    def __call__(self, value: Any) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f":{name}"


def _label_sql(axis: str, bind: _Parameters) -> str:
    return (f"(SELECT value FROM labels WHERE record = s.record AND solution = s.solution "
            f"AND axis = {bind(axis)})")


def _score_sql(candidates: Sequence[str], bind: _Parameters) -> str:
    """The first of the candidate scores a solution has (NULL where it has none)."""
    lookups = [f"(SELECT value FROM scores WHERE record = s.record AND solution = s.solution "
               f"AND score = {bind(name)})" for name in candidates]
    return lookups[0] if len(lookups) == 1 else f"COALESCE({', '.join(lookups)})"


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value)) if value is not None else (2, "")


class Results:
    """The indexed records of one or more results directories. Use as a context manager."""

    def __init__(self, result_dirs: Sequence[str | Path], rebuild: bool = False, include_unverified: bool = False):
        if not result_dirs:
            raise ConfigError("no results directory is not accepted; expected at least one RESULT_DIR")
        self.result_dirs = [Path(d) for d in result_dirs]
        self.include_unverified = include_unverified
        self.warnings: list[str] = []
        self.unverified: list[Path] = []  # records without a digest (left out unless include_unverified)
        self._indexes: list[_Index] = []
        self._runs: dict[str, RunInfo] | None = None
        first_seen: dict[str, Path] = {}
        try:
            for result_dir in self.result_dirs:
                self._open(result_dir, rebuild, first_seen)
        except BaseException:
            self.close()
            raise

    def _open(self, result_dir: Path, rebuild: bool, first_seen: dict[str, Path]) -> None:
        connection, warnings = open_index(result_dir, rebuild)
        index = _Index(result_dir, connection, [])
        self._indexes.append(index)
        self.warnings += warnings
        use = "used, because --include-unverified was given, and marked unverified" if self.include_unverified \
            else "left out (--include-unverified uses it, marked unverified)"
        for path, run_id, verified in connection.execute(
                "SELECT path, run_id, verified FROM records WHERE indexed = 1 ORDER BY path"):
            kept = first_seen.setdefault(run_id, result_dir / path)
            if kept != result_dir / path:
                index.excluded.append(path)
                self.warnings.append(f"{result_dir / path}: run {run_id} is also at {kept}; counted once, from there")
            elif not verified:
                self.unverified.append(result_dir / path)
                self.warnings.append(f"{result_dir / path}: no digest, so nothing vouches for its contents: "
                                     f"unverified; {use}")

    def close(self) -> None:
        for index in self._indexes:
            index.connection.close()
        self._indexes = []

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _visible(self, index: _Index, bind: _Parameters) -> str:
        """SQL true for the records a query counts: indexed, not a duplicate, verified unless asked otherwise."""
        sql = "r.indexed = 1" + ("" if self.include_unverified else " AND r.verified = 1")
        if index.excluded:
            sql += f" AND r.path NOT IN ({', '.join(bind(path) for path in index.excluded)})"
        return sql

    def runs(self) -> dict[str, RunInfo]:
        """Run id → the run, for every run the queries count."""
        if self._runs is None:
            self._runs = self._read_runs()
        return self._runs

    def _read_runs(self) -> dict[str, RunInfo]:
        found = {}
        for index in self._indexes:
            bind = _Parameters()
            for row in index.connection.execute(
                    f"SELECT r.path, r.verified, r.axes, r.replicate_axes, r.facts, {', '.join(RUN_COLUMNS)} "
                    f"FROM records AS r WHERE {self._visible(index, bind)} ORDER BY r.path", bind):
                path, verified, axes, replicates, facts, *run = row
                fields = dict(zip(RUN_COLUMNS, run))
                found[fields["run_id"]] = RunInfo(
                    **fields, run_dir=index.result_dir / Path(path).parent, verified=bool(verified),
                    axes=json.loads(axes), replicate_axes=tuple(json.loads(replicates)), facts=json.loads(facts))
        return found

    @property
    def axis_names(self) -> list[str]:
        return sorted({name for run in self.runs().values() for name in run.axes})

    @property
    def score_names(self) -> list[str]:
        return sorted({name for run in self.runs().values() for name in run.facts["scores"]})

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
        accepted = self.fields
        unknown = [name for name in names if name not in accepted]
        if unknown:
            raise ConfigError(f"{option} field {unknown[0]!r} is not accepted; expected one of: {', '.join(accepted)}")

    def _source(self, index: _Index, where: Sequence[Condition], bind: _Parameters) -> str:
        """FROM … WHERE … of the counted solutions of `index` matching the conditions."""
        def column(field: str) -> str:
            return f"r.{field}" if field in RUN_FIELDS else _label_sql(field, bind)

        matching = where_sql(where, column, bind, RUN_FIELDS)
        return (f"FROM solutions AS s JOIN records AS r ON r.id = s.record "
                f"WHERE {self._visible(index, bind)} AND {matching}")

    def _checked(self, where: Where, group_by: Sequence[str] = ()) -> list[Condition]:
        conditions = parsed(where)
        self.check_fields([*(c.field for c in conditions), *group_by], "--where/--group" if group_by else "--where")
        return conditions

    def solutions(self, where: Where = "", metrics: Sequence[str] = tuple(HEADLINE_METRICS)) -> list[Solution]:
        """The solutions matching `where`, each with the requested metrics (NaN where it has none)."""
        conditions = self._checked(where)
        wanted = self.metric_scores(metrics)
        solutions = []
        for index in self._indexes:
            bind = _Parameters()
            labels = ("(SELECT json_group_object(axis, value) FROM labels "
                      "WHERE record = s.record AND solution = s.solution)")
            selected = ", ".join(["r.path", "r.verified", "s.failure", *(f"r.{c}" for c in RUN_COLUMNS), "r.axes",
                                  "r.replicate_axes", labels, *(_score_sql(c, bind) for c in wanted.values())])
            query = f"SELECT {selected} {self._source(index, conditions, bind)} ORDER BY r.path, s.solution"
            solutions += [_solution(index.result_dir, row, list(wanted)) for row in
                          index.connection.execute(query, bind)]
        return solutions

    def setting_axes(self, where: Where = "") -> list[str]:
        """Every axis that is a setting (not a replicate) of the records with solutions matching `where`, in
        first-seen order: what tells replicates of one setting from different settings."""
        conditions = self._checked(where)
        axes: dict[str, None] = {}
        for index in self._indexes:
            bind = _Parameters()
            for axis_json, replicate_json in index.connection.execute(
                    f"SELECT DISTINCT r.axes, r.replicate_axes {self._source(index, conditions, bind)} "
                    "ORDER BY r.path", bind):
                replicates = json.loads(replicate_json)
                axes.update(dict.fromkeys(name for name in json.loads(axis_json) if name not in replicates))
        return list(axes)

    def groups(self, where: Where = "", group_by: Sequence[str] = (), metrics: Sequence[str] = tuple(HEADLINE_METRICS)
               ) -> list[Group]:
        """Per group of the solutions matching `where` (sharing the `group_by` fields' values): each metric's
        mean, standard deviation (ddof = 0) and count of known values, computed in SQL (two passes, so the
        deviations are from the group's own mean) and combined exactly across indexes."""
        conditions = self._checked(where, group_by)
        wanted = self.metric_scores(metrics)
        partial: dict[tuple[Any, ...], _Partial] = {}
        for index in self._indexes:
            for key, part in self._index_groups(index, conditions, group_by, wanted):
                partial.setdefault(key, _Partial(len(wanted))).add(part)
        ordered = sorted(partial, key=lambda k: tuple(_sort_key(v) for v in k))
        return [partial[key].group(key, wanted) for key in ordered if partial[key].count]

    def _index_groups(self, index: _Index, conditions: Sequence[Condition], group_by: Sequence[str],
                      wanted: dict[str, tuple[str, ...]]) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        bind = _Parameters()
        keys = [f"r.{name}" if name in RUN_FIELDS else _label_sql(name, bind) for name in group_by]
        key_names = [f"k{i}" for i in range(len(keys))]
        metric_names = [f"m{i}" for i in range(len(wanted))]
        partition = f"PARTITION BY {', '.join(key_names)}" if key_names else ""
        selected = [*(f"{k} AS {n}" for k, n in zip(keys, key_names)), "r.run_id", "r.verified", "s.failure",
                    *(f"{_score_sql(c, bind)} AS {m}" for c, m in zip(wanted.values(), metric_names))]
        deviations = [f"{m} - AVG({m}) OVER ({partition}) AS d{m}" for m in metric_names]
        aggregates = [*key_names, "COUNT(*)", "json_group_array(DISTINCT run_id)", "SUM(1 - verified)",
                      "COUNT(failure)", "json_group_array(DISTINCT failure)",
                      *(f"COUNT({m}), AVG({m}), SUM(d{m} * d{m})" for m in metric_names)]
        query = (f"WITH base AS MATERIALIZED (SELECT {', '.join(selected)} {self._source(index, conditions, bind)}), "
                 f"centred AS (SELECT {', '.join(['*', *deviations])} FROM base) "
                 f"SELECT {', '.join(aggregates)} FROM centred"
                 + (f" GROUP BY {', '.join(key_names)}" if key_names else ""))
        return [(tuple(row[:len(keys)]), row[len(keys):]) for row in index.connection.execute(query, bind)]


class _Partial:
    """A group's counts and moments, added up over indexes."""

    def __init__(self, num_metrics: int):
        self.count, self.unverified, self.failed = 0, 0, 0
        self.run_ids: set[str] = set()
        self.failures: set[str] = set()
        self.moments: list[Moments] = [NO_VALUES] * num_metrics

    def add(self, row: tuple[Any, ...]) -> None:
        count, run_ids, unverified, failed, failures, *moments = row
        self.count += count
        self.run_ids.update(json.loads(run_ids))
        self.unverified += unverified or 0
        self.failed += failed
        self.failures.update(f for f in json.loads(failures) if f is not None)
        self.moments = [combined(mine, tuple(moments[3 * i: 3 * i + 3])) for i, mine in enumerate(self.moments)]

    def group(self, key: tuple[Any, ...], wanted: dict[str, tuple[str, ...]]) -> Group:
        return Group(key, self.count, {name: mean_std_count(m) for name, m in zip(wanted, self.moments)},
                     tuple(sorted(self.run_ids)), self.failed, tuple(sorted(self.failures)), self.unverified)


def _solution(result_dir: Path, row: tuple[Any, ...], metrics: list[str]) -> Solution:
    path, verified, failure, *rest = row
    run = dict(zip(RUN_COLUMNS, rest))
    axis_order, replicate_axes, labels = (json.loads(text) for text in rest[len(RUN_COLUMNS):len(RUN_COLUMNS) + 3])
    values = rest[len(RUN_COLUMNS) + 3:]
    return Solution(**{**run, "run_dir": result_dir / Path(path).parent}, verified=bool(verified), failure=failure,
                    replicate_axes=tuple(replicate_axes), axes={name: labels[name] for name in axis_order},
                    scores={name: math.nan if v is None else float(v) for name, v in zip(metrics, values)})
