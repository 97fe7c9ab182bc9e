"""What the leaderboard shows, as data: each model's settings summarised over their replicates (through the
results store's one grouping path), the studies they form (one model on one dataset, source and config, with
whatever axes it declares), and the rankings per dataset, source and headline metric. Rendering lives elsewhere.

A study's grid axes are its numeric setting axes with more than one value (the first two); every other setting
axis (a string one such as the linear model's solver, or one held at a single value) is fixed, and each of its
values is a study of its own."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dlbench.leaderboard import stats
from dlbench.leaderboard.scale import Scale, source_label, study_scale
from dlbench.results import HEADLINE_METRICS, IDENTITY_FIELDS, Condition, HeadlineMetric, Results, RunInfo, score_unit


def format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_setting(setting: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{name}={format_value(value)}" for name, value in setting) or "-"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SettingRow:
    """One setting (model, dataset, source, config and setting-axis values) over its replicates."""
    model: str
    dataset: str
    source: str
    config_hash: str
    setting: tuple[tuple[str, Any], ...]
    statistics: dict[str, tuple[float, float, int]]  # metric → (mean, std ddof = 0, known values)
    count: int  # solutions (replicates)
    failed: int  # replicates that did not converge or diverged
    failures: tuple[str, ...]
    unverified: int  # replicates from records without a digest
    run_ids: tuple[str, ...]
    values: dict[str, tuple[float, ...]] = field(default_factory=dict)  # metric → each replicate's value

    def axis(self, name: str) -> Any:
        return dict(self.setting).get(name)

    @property
    def key(self) -> tuple[Any, ...]:
        return self.model, self.dataset, self.source, self.config_hash, self.setting


def _model_rows(results: Results, model: str, metrics: Sequence[str]) -> list[SettingRow]:
    where = [Condition("model", "=", model)]
    axes = results.setting_axes(where)
    fields = [*IDENTITY_FIELDS, *axes]
    rows = {}
    for group in results.groups(where, fields, metrics):
        named = dict(zip(fields, group.key))
        setting = tuple((axis, named[axis]) for axis in axes if named[axis] is not None)
        row = SettingRow(*(named[name] for name in IDENTITY_FIELDS), setting, group.statistics, group.count,
                         group.failed, group.failures, group.unverified, group.run_ids)
        rows[row.key] = row
    for solution in results.solutions(where, metrics):  # each replicate's value, for the figures of spread
        setting = tuple((axis, solution.axes[axis]) for axis in axes if axis in solution.axes)
        row = rows[(solution.model, solution.dataset, solution.source, solution.config_hash, setting)]
        for metric in metrics:
            row.values.setdefault(metric, ())
            row.values[metric] += (solution.scores[metric],)
    return list(rows.values())


def setting_rows(results: Results, metrics: Sequence[str] = tuple(HEADLINE_METRICS)) -> list[SettingRow]:
    """Every model's settings, each with each metric's mean, std and count over its replicates, in order of model
    and then of setting (numbers numerically)."""
    models = sorted({run.model for run in results.runs().values()})
    return [row for model in models for row in _model_rows(results, model, metrics)]


@dataclass(frozen=True)
class Study:
    """One model on one dataset, source and config, its fixed axes held, its grid axes swept."""
    model: str
    dataset: str
    source: str
    config_hash: str
    fixed: tuple[tuple[str, Any], ...]
    axes: tuple[str, ...]  # grid axes: numeric setting axes with more than one value, at most two
    rows: tuple[SettingRow, ...]
    runs: tuple[RunInfo, ...]
    scale: Scale

    @property
    def title(self) -> str:
        fixed = f", {format_setting(self.fixed)}" if self.fixed else ""
        return f"{self.dataset} ({source_label(self.source)}): {self.model}{fixed}, config {self.config_hash}"

    @property
    def slug(self) -> str:
        parts = [self.dataset, self.source, self.model, *(format_value(v) for _, v in self.fixed), self.config_hash]
        return "-".join("".join(c if c.isalnum() or c in "._" else "_" for c in part) for part in parts)

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(run.run_id for run in self.runs)

    def values(self, axis: str) -> tuple[Any, ...]:
        return tuple(sorted({row.axis(axis) for row in self.rows}))

    def has(self, metric: str) -> bool:
        return any(row.statistics[metric][2] for row in self.rows if metric in row.statistics)

    def unit(self, metric: str) -> str | None:
        """The unit of a metric's values in this study: of the first candidate score its runs have."""
        candidates = HEADLINE_METRICS[metric].scores if metric in HEADLINE_METRICS else (metric,)
        present = [name for name in candidates if any(name in run.facts["scores"] for run in self.runs)]
        return score_unit(present[0], self.runs[0].facts["likelihood"]) if present else None

    def _cell(self, row: SettingRow) -> tuple[int, ...]:
        return tuple(self.values(axis).index(row.axis(axis)) for axis in self.axes)

    def grid(self, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Means, stds and counts of `metric` over the grid axes' values (NaN, 0: no such cell)."""
        shape = tuple(len(self.values(axis)) for axis in self.axes)
        means, stds, counts = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, int)
        for row in self.rows:
            means[self._cell(row)], stds[self._cell(row)], counts[self._cell(row)] = row.statistics[metric]
        return means, stds, counts

    def failed_cells(self) -> np.ndarray:
        """Over the grid axes' values: whether some replicate of the cell failed (did not converge or diverged)."""
        failed = np.zeros(tuple(len(self.values(axis)) for axis in self.axes), bool)
        for row in self.rows:
            failed[self._cell(row)] = row.failed > 0
        return failed


def _grid_axes(rows: Sequence[SettingRow]) -> tuple[str, ...]:
    names = list(dict.fromkeys(name for row in rows for name, _ in row.setting))
    numeric = [name for name in names if all(is_number(row.axis(name)) for row in rows)
               and len({row.axis(name) for row in rows}) > 1]
    return tuple(numeric[:2])


def studies(rows: Sequence[SettingRow], runs: dict[str, RunInfo]) -> list[Study]:
    """The studies the rows form, in order of dataset, source, model, config and fixed values."""
    experiments: dict[tuple[Any, ...], list[SettingRow]] = {}
    for row in rows:
        experiments.setdefault((row.dataset, row.source, row.model, row.config_hash), []).append(row)
    found = []
    for (dataset, source, model, config), members in sorted(experiments.items()):
        axes = _grid_axes(members)
        held: dict[tuple[Any, ...], list[SettingRow]] = {}
        for row in members:
            held.setdefault(tuple((n, v) for n, v in row.setting if n not in axes), []).append(row)
        for fixed, cells in held.items():
            study_runs = tuple(runs[run] for run in dict.fromkeys(r for row in cells for r in row.run_ids))
            scale = study_scale(study_runs, dict(fixed), [row.count for row in cells])
            found.append(Study(model, dataset, source, config, fixed, axes, tuple(cells), study_runs, scale))
    return found


@dataclass(frozen=True)
class Ranking:
    """The settings of one or more studies on one dataset and source, ranked by one headline metric's mean.
    Settings some of whose replicates failed, or without a value, are listed last and not ranked."""
    dataset: str
    source: str
    metric: HeadlineMetric
    studies: tuple[Study, ...]
    ranks: tuple[float, ...]  # competition rank per row (NaN: not ranked)
    rows: tuple[SettingRow, ...]  # best first
    compares_models: bool  # every model's study on this data; else one study of a model run several ways

    @property
    def unranked(self) -> int:
        return sum(math.isnan(rank) for rank in self.ranks)

    @property
    def slug(self) -> str:
        base = f"{self.dataset}-{self.source}-models" if self.compares_models else self.studies[0].slug
        return f"{base}-{self.metric.alias}"

    def study_of(self, row: SettingRow) -> Study:
        return next(study for study in self.studies if any(row is member for member in study.rows))


def _ranking(metric: HeadlineMetric, members: Sequence[Study], compares_models: bool) -> Ranking | None:
    rows = [row for study in members for row in study.rows]
    means = np.array([row.statistics[metric.alias][0] for row in rows])
    if np.isnan(means).all():
        return None
    ranked = np.where([row.failed == 0 for row in rows], means, np.nan)
    ranks = stats.ranks(ranked, metric.higher_is_better)
    order = sorted(range(len(rows)), key=lambda i: (np.isnan(ranks[i]), ranks[i], np.isnan(means[i]), i))
    return Ranking(members[0].dataset, members[0].source, metric, tuple(members), tuple(ranks[i] for i in order),
                   tuple(rows[i] for i in order), compares_models)


def comparison_groups(all_studies: Sequence[Study]) -> list[tuple[tuple[Study, ...], bool]]:
    """The studies ranked together, and whether they compare models: per dataset and source, every model's study
    in one table where each model has one study there; otherwise (one model run several ways: solvers, budgets,
    data sizes) one table per study, so different experiments of one model are never ranked against each other."""
    by_data: dict[tuple[str, str], list[Study]] = {}
    for study in all_studies:
        by_data.setdefault((study.dataset, study.source), []).append(study)
    groups: list[tuple[tuple[Study, ...], bool]] = []
    for members in by_data.values():
        models = [study.model for study in members]
        if len(set(models)) == len(models):
            groups.append((tuple(members), True))
        else:
            groups += [((study,), False) for study in members]
    return groups


def rankings(all_studies: Sequence[Study]) -> list[Ranking]:
    """A ranking per comparison group and headline metric with at least one value."""
    found = []
    for group, compares_models in comparison_groups(all_studies):
        found += filter(None, (_ranking(metric, group, compares_models) for metric in HEADLINE_METRICS.values()))
    return found


# Pareto front and Tchebycheff pick (deep-protocol.md, "Post-processing"): reconstruction is the cost (↓), MIG the
# gain (↑).
PARETO_COST, PARETO_GAIN = "reconstruction", "mig"


def pareto_rows(study: Study) -> tuple[list[SettingRow], np.ndarray, dict[float, SettingRow | None]]:
    """The settings none of whose replicates failed, with both objectives known; which of them are on the
    (reconstruction ↓, MIG ↑) front; and the setting the augmented Tchebycheff score picks for each weight w on
    reconstruction (1 − w on MIG)."""
    rows = [row for row in study.rows if row.failed == 0 and row.statistics[PARETO_COST][2]
            and row.statistics[PARETO_GAIN][2]]
    costs = np.array([row.statistics[PARETO_COST][0] for row in rows])
    gains = np.array([row.statistics[PARETO_GAIN][0] for row in rows])
    picks = {}
    for weight in stats.TCHEBYCHEFF_WEIGHTS:
        index = stats.tchebycheff_pick(costs, gains, weight) if rows else None
        picks[weight] = None if index is None else rows[index]
    return rows, stats.pareto_front(costs, gains) if rows else np.zeros(0, bool), picks
