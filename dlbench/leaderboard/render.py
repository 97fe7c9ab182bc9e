"""What the leaderboard says, shared by its two renderings (markdown.py: README.md, page.py: index.html): the
scale banner, each ranking's caption and row cells, the figure captions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.leaderboard.figures import Figure
from dlbench.leaderboard.scale import source_label
from dlbench.leaderboard.tables import Ranking, SettingRow, Study, format_setting
from dlbench.results import format_mean_std

FIGURE_CAPTIONS = {
    "curves": "Each headline metric's mean ± std over the replicates against the study's first axis (one line per "
              "value of its second), every replicate a dot.",
    "change": "Each cell's mean as its change from the cell with the smallest value of both axes: percent for "
              "positive quantities, the absolute difference otherwise.",
    "pareto": "Setting means in (reconstruction ↓, MIG ↑) of the settings whose replicates all converged: the Pareto "
              "front joined, the augmented Tchebycheff picks for w = 0.1, 0.5, 0.9 (w weighs reconstruction, 1 − w "
              "MIG) marked.",
    "distribution": "The metric over the replicates of every setting of every model on this data: a box per setting "
                    "(quartiles and range), each replicate a dot, a panel per model.",
}
HOW_TO_READ = (
    "Each table ranks settings on one dataset from one data source by the mean of one headline metric over the "
    "setting's replicates (seeds, or random starts for the linear model): mean ± standard deviation (ddof = 0) and "
    "the replicate count n. Where each model has one study on the data, one table compares every model's settings; "
    "a model run several ways there (solvers, budgets, sizes) gets a table per study instead. Official data and "
    "stand-ins are never ranked together. Ties share the better rank. A setting some of whose replicates did not "
    "converge or diverged is listed last, not ranked, and says how many. Each row names its runs (linked to the "
    "copies of their records under records/), the plugin package and version that made them, and their fit hashes; "
    "`config` is the hash of the model's hyperparameters (less the swept grid) and the dataset's parameters. "
    "Settings sort by their values as numbers.")
CLAIMS_LINK = ("The paper's claims, judged on these records against each claim's minimum scale, are in paper.md "
               "(built by `dlbench report paper`).")
BANNER_INTRO = ("Scale of every study below, against the protocol it reproduces: what its numbers can say. A study far "
                "below its protocol's steps or seeds shows the pipeline working, not the paper's numbers.")
BANNER_HEADERS = ["study", "steps per solution", "replicates per setting", "device", "data", "packages", "runs"]
HEADERS = ["rank", "model", "setting", "mean ± std", "n", "steps", "source", "config", "runs", "package", "fit hash"]


@dataclass
class LeaderboardContent:
    result_dirs: list[Path]
    record_count: int
    solution_count: int
    studies: list[Study]
    rankings: list[Ranking]
    study_figures: dict[str, list[Figure]]  # study slug → its figures
    ranking_figures: dict[str, Figure]  # ranking slug → the spread of its metric per model and setting
    run_figures: list[tuple[str, list[Path], str]]  # (run id, figures its model's plugin drew, its study's scale)
    record_links: dict[str, str]  # run id → path of its record copy, relative to the leaderboard
    warnings: list[str] = field(default_factory=list)


def section_title(dataset: str, source: str) -> str:
    return f"{dataset}: {source_label(source)} data"


def anchor(text: str) -> str:
    """GitHub's heading anchor: lower case, spaces to hyphens, other punctuation dropped."""
    return "".join("-" if c == " " else c for c in text.lower() if c.isalnum() or c in " -_")


def sections(content: LeaderboardContent) -> list[tuple[str, str, list[Ranking], list[Study]]]:
    keys = dict.fromkeys((s.dataset, s.source) for s in content.studies)
    return [(dataset, source, [r for r in content.rankings if (r.dataset, r.source) == (dataset, source)],
             [s for s in content.studies if (s.dataset, s.source) == (dataset, source)]) for dataset, source in keys]


def banner_rows(content: LeaderboardContent) -> list[list[str]]:
    return [[study.title, study.scale.steps_text(), study.scale.replicates_text(),
             ", ".join(study.scale.devices) or "not recorded", source_label(study.source),
             ", ".join(study.scale.packages), str(len(study.runs))] for study in content.studies]


def metric_heading(ranking: Ranking) -> str:
    arrow = "higher is better" if ranking.metric.higher_is_better else "lower is better"
    unit = ranking.studies[0].unit(ranking.metric.alias)
    what = "models compared" if ranking.compares_models else ranking.studies[0].title
    return f"{ranking.metric.label} ({arrow}{f'; {unit}' if unit else ''}): {what}"


def ranking_caption(ranking: Ranking) -> list[str]:
    lines = [f"Scale of {study.model}{', ' + format_setting(study.fixed) if study.fixed else ''}: "
             f"{study.scale.short()}." for study in ranking.studies]
    if ranking.unranked:
        lines.append(f"{ranking.unranked} setting(s) with failed replicates or no value: listed last, not ranked.")
    return lines


def rank_text(rank: float) -> str:
    return "-" if math.isnan(rank) else f"{rank:.0f}"


def setting_text(row: SettingRow) -> str:
    """The setting, flagged where replicates failed or come from unverified records."""
    text = format_setting(row.setting)
    if row.failed:
        text += f" ({row.failed}/{row.count} {' or '.join(row.failures)})"
    if row.unverified:
        text += f" (unverified: {row.unverified}/{row.count})"
    return text


def row_cells(ranking: Ranking, rank: float, row: SettingRow) -> list[str]:
    mean, std, count = row.statistics[ranking.metric.alias]
    return [rank_text(rank), row.model, setting_text(row), format_mean_std(mean, std), str(count),
            ranking.study_of(row).scale.compact(), source_label(row.source), row.config_hash]


def figure_caption(figure: Figure) -> str:
    subject = figure.title.split("\n")[0]
    return f"{subject}. {FIGURE_CAPTIONS[figure.kind]} Scale: {figure.scale}."


def packages_of(ranking: Ranking, row: SettingRow) -> str:
    study = ranking.study_of(row)
    return ", ".join(dict.fromkeys(f"{run.plugin_distribution} {run.plugin_version}" for run in study.runs
                                   if run.run_id in row.run_ids))


def fit_hashes_of(ranking: Ranking, row: SettingRow) -> str:
    return ", ".join(run.fit_hash for run in ranking.study_of(row).runs if run.run_id in row.run_ids)
