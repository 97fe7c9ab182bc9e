"""What the leaderboard shows, as data: settings summarised over their replicates, rankings per dataset,
data source and headline metric, and the β × λ studies behind the figures. Rendering lives elsewhere."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from dlbench.leaderboard import stats
from dlbench.results import HEADLINE_METRICS, HeadlineMetric, Solution

BETA, LAMBDA = "beta", "lambda"
# The cell every percent change is relative to (deep-protocol.md, "Post-processing").
BASELINE_CELL = {BETA: 1.0, LAMBDA: 0.0}
# Pareto front and Tchebycheff pick: reconstruction is the cost (↓), MIG the gain (↑).
PARETO_COST, PARETO_GAIN = "reconstruction", "mig"
# A per-solution score some models report (1: converged); the leaderboard flags settings where it is below 1.
CONVERGENCE_SCORE = "converged"
SOURCE_LABELS = {"official": "official", "procedural": "stand-in (procedural)", "synthetic": "synthetic"}


def source_label(source: str) -> str:
    """How a row's data source is labelled: official data, or what stands in for it."""
    return SOURCE_LABELS.get(source, f"stand-in ({source})")


def format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_setting(setting: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{name}={format_value(value)}" for name, value in setting) or "-"


@dataclass(frozen=True)
class SettingRow:
    """One setting (model, dataset, source, config and setting-axis values) over its replicates."""
    model: str
    dataset: str
    source: str
    config_hash: str
    setting: tuple[tuple[str, Any], ...]
    statistics: dict[str, tuple[float, float, int]]  # metric → (mean, std ddof = 0, replicates)
    run_ids: tuple[str, ...]
    packages: tuple[str, ...]  # "distribution version" of the plugin that made the runs
    fit_hashes: tuple[str, ...]

    def axis(self, name: str) -> Any:
        return dict(self.setting).get(name)


def setting_rows(solutions: Sequence[Solution], metrics: Sequence[str] = tuple(HEADLINE_METRICS)
                 ) -> list[SettingRow]:
    """The solutions grouped into settings, in first-seen order, each with each metric's mean, std and
    replicate count (`metrics`: names the solutions were queried with)."""
    keys = [(s.model, s.dataset, s.source, s.config_hash, s.setting) for s in solutions]
    summaries = {name: stats.group_summaries(keys, np.array([s.scores[name] for s in solutions], dtype=float))
                 for name in metrics}
    members: dict[tuple[Any, ...], list[Solution]] = {}
    for key, solution in zip(keys, solutions):
        members.setdefault(key, []).append(solution)
    rows = []
    for key, group in members.items():
        runs = dict.fromkeys((s.run_id, f"{s.plugin_distribution} {s.plugin_version}", s.fit_hash) for s in group)
        run_ids, packages, fit_hashes = (tuple(dict.fromkeys(part)) for part in zip(*runs))
        rows.append(SettingRow(*key, {name: summaries[name][key] for name in metrics}, run_ids, packages, fit_hashes))
    return rows


@dataclass(frozen=True)
class Ranking:
    """The settings of one dataset and data source ranked by one headline metric's mean."""
    dataset: str
    source: str
    metric: HeadlineMetric
    ranks: tuple[float, ...]  # competition rank per row (NaN: no value, not ranked)
    rows: tuple[SettingRow, ...]  # best first; unranked last


def rankings(rows: Sequence[SettingRow]) -> list[Ranking]:
    """A ranking per (dataset, source, headline metric) that has at least one value. Rows of different
    sources are never in one ranking."""
    tables = []
    for dataset, source in sorted({(row.dataset, row.source) for row in rows}):
        members = [row for row in rows if (row.dataset, row.source) == (dataset, source)]
        for metric in HEADLINE_METRICS.values():
            means = np.array([row.statistics[metric.alias][0] for row in members])
            if np.isnan(means).all():
                continue
            ranks = stats.ranks(means, metric.higher_is_better)
            order = sorted(range(len(members)), key=lambda i: (np.isnan(ranks[i]), ranks[i], i))
            tables.append(Ranking(dataset, source, metric, tuple(ranks[i] for i in order),
                                  tuple(members[i] for i in order)))
    return tables


@dataclass(frozen=True)
class Study:
    """One model's β × λ grid on one dataset, source and config (other setting axes held at `fixed`)."""
    model: str
    dataset: str
    source: str
    config_hash: str
    fixed: tuple[tuple[str, Any], ...]
    betas: tuple[float, ...]
    lambdas: tuple[float, ...]
    means: dict[str, np.ndarray]  # metric → (β, λ) cell means (NaN: no such cell)
    stds: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    run_ids: tuple[str, ...]

    @property
    def title(self) -> str:
        fixed = f", {format_setting(self.fixed)}" if self.fixed else ""
        return f"{self.dataset} ({source_label(self.source)}): {self.model}{fixed}, config {self.config_hash}"

    @property
    def slug(self) -> str:
        parts = [self.dataset, self.source, self.model, *(format_value(v) for _, v in self.fixed), self.config_hash]
        return "-".join("".join(c if c.isalnum() or c in "._" else "_" for c in part) for part in parts)

    def percent_change(self, alias: str) -> np.ndarray | None:
        """Each cell's mean as % change from the (β = 1, λ = 0) cell's; None without that cell."""
        if BASELINE_CELL[BETA] not in self.betas or BASELINE_CELL[LAMBDA] not in self.lambdas:
            return None
        baseline = self.means[alias][self.betas.index(BASELINE_CELL[BETA]), self.lambdas.index(BASELINE_CELL[LAMBDA])]
        return stats.percent_change(self.means[alias], baseline)

    def pareto_front(self) -> np.ndarray:
        """(β, λ) mask of the cells on the (reconstruction ↓, MIG ↑) Pareto front."""
        return stats.pareto_front(self.means[PARETO_COST].ravel(),
                                  self.means[PARETO_GAIN].ravel()).reshape(len(self.betas), len(self.lambdas))

    def tchebycheff_picks(self) -> dict[float, tuple[float, float] | None]:
        """Weight w → the (β, λ) cell the augmented Tchebycheff score picks (None: no cell has both)."""
        picks = {}
        for weight in stats.TCHEBYCHEFF_WEIGHTS:
            index = stats.tchebycheff_pick(self.means[PARETO_COST].ravel(), self.means[PARETO_GAIN].ravel(), weight)
            picks[weight] = None if index is None else \
                (self.betas[index // len(self.lambdas)], self.lambdas[index % len(self.lambdas)])
        return picks


def studies(rows: Sequence[SettingRow]) -> list[Study]:
    """Every β × λ grid in the rows: settings with both axes, grouped by everything else."""
    grids: dict[tuple[Any, ...], list[SettingRow]] = {}
    for row in rows:
        axes = dict(row.setting)
        if BETA not in axes or LAMBDA not in axes:
            continue
        fixed = tuple((name, value) for name, value in row.setting if name not in (BETA, LAMBDA))
        grids.setdefault((row.model, row.dataset, row.source, row.config_hash, fixed), []).append(row)
    result = []
    for (model, dataset, source, config_hash, fixed), members in sorted(grids.items(), key=lambda item: str(item[0])):
        betas = tuple(sorted({float(row.axis(BETA)) for row in members}))
        lambdas = tuple(sorted({float(row.axis(LAMBDA)) for row in members}))
        shape = (len(betas), len(lambdas))
        means, stds, counts = ({name: np.full(shape, fill) for name in members[0].statistics}
                               for fill in (np.nan, np.nan, 0))
        for row in members:
            cell = (betas.index(float(row.axis(BETA))), lambdas.index(float(row.axis(LAMBDA))))
            for alias, (mean, std, count) in row.statistics.items():
                means[alias][cell], stds[alias][cell], counts[alias][cell] = mean, std, count
        run_ids = tuple(dict.fromkeys(run for row in members for run in row.run_ids))
        result.append(Study(model, dataset, source, config_hash, fixed, betas, lambdas, means, stds, counts, run_ids))
    return result
