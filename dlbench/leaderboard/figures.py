"""The leaderboard's figures (matplotlib, Agg, each PNG written atomically), drawn for whatever axes each model
declares: per study, each headline metric against its first grid axis (one line per value of the second, every
replicate a dot), the change of each cell from the smallest setting where it has two grid axes (percent for
positive quantities, the difference otherwise), and the (reconstruction ↓, MIG ↑) Pareto front with the augmented
Tchebycheff picks; per dataset, each metric's spread over replicates per model and setting (disentanglement_lib's
study plots). Every title names the scale. Plus, for a model that registers its own plot, that plot per run."""
from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench import atomic_write
from dlbench.leaderboard import stats
from dlbench.leaderboard.scale import source_label
from dlbench.leaderboard.tables import (
    PARETO_COST,
    PARETO_GAIN,
    Ranking,
    SettingRow,
    Study,
    format_setting,
    format_value,
    pareto_rows,
)
from dlbench.results import HEADLINE_METRICS

DPI = 90
LABEL_SIZE, TITLE_SIZE = 9, 9  # points: 11 px at the page's 1:1 scale
# The page is at most 1,400 px wide: figures up to 15 inches (1,350 px at 90 dpi) are shown at full size, so
# their 8-point labels stay 10 px high. Wider sets of panels wrap onto more rows.
MAX_WIDTH = 15.0


@dataclass(frozen=True)
class Figure:
    path: Path
    kind: str
    title: str  # as drawn on the figure, its scale included
    scale: str  # the scale of every study it shows, in full


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(figure, path: Path, kind: str, title: str, scale: str) -> Figure:
    # Wrapped to the figure's width (about 0.55 em per character), so no title runs off its edges.
    width = max(40, int(figure.get_figwidth() * 72 / (0.55 * TITLE_SIZE)))
    figure.suptitle("\n".join(textwrap.fill(line, width) for line in title.split("\n")), fontsize=TITLE_SIZE)
    figure.tight_layout()
    atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=DPI))
    _pyplot().close(figure)
    return Figure(path, kind, title, scale)


def _panels(count: int, width: float, height: float, sharey: bool = False, width_ratios: list[float] | None = None):
    """A figure of `count` panels of about `width` × `height` inches each, in rows no wider than MAX_WIDTH; the
    figure and its panels in order (the unused places of the last row hidden)."""
    per_row = max(1, min(count, int(MAX_WIDTH // width)))
    rows = -(-count // per_row)
    ratios = (width_ratios or [1.0] * count)[:per_row] if rows == 1 else None
    figure, grid = _pyplot().subplots(rows, per_row, figsize=(min(MAX_WIDTH, width * per_row), height * rows),
                                      squeeze=False, sharey=sharey, gridspec_kw={"width_ratios": ratios})
    panels = list(grid.ravel())
    for unused in panels[count:]:
        unused.set_visible(False)
    return figure, panels[:count]


def _direction(metric: str) -> str:
    return "↑" if HEADLINE_METRICS[metric].higher_is_better else "↓"


def metric_label(study: Study, metric: str) -> str:
    unit = study.unit(metric)
    return f"{HEADLINE_METRICS[metric].label}{f' ({unit})' if unit else ''} {_direction(metric)}"


def _metrics(study: Study) -> list[str]:
    return [metric for metric in HEADLINE_METRICS if study.has(metric)]


def _axis_scale(panel, values: tuple, name: str) -> None:
    numbers = np.array(values, dtype=float)
    if numbers.min() > 0 and numbers.max() / numbers.min() >= 4:  # β, γ, c_max: spread over orders of magnitude
        panel.set_xscale("log", base=2)
    panel.set_xticks(numbers, [format_value(v) for v in values])
    panel.minorticks_off()
    panel.set_xlabel(name)


def _curve(panel, study: Study, metric: str, rows: list[SettingRow], label: str | None) -> None:
    axis = study.axes[0]
    rows = sorted(rows, key=lambda row: row.axis(axis))
    xs = np.array([row.axis(axis) for row in rows], dtype=float)
    means = np.array([row.statistics[metric][0] for row in rows])
    stds = np.array([row.statistics[metric][1] for row in rows])
    known = ~np.isnan(means)
    line = panel.errorbar(xs[known], means[known], yerr=stds[known], marker="o", markersize=4, capsize=3, label=label)
    for x, row in zip(xs, rows):
        values = np.array(row.values.get(metric, ()), dtype=float)
        panel.plot(np.full(values.shape, x), values, ".", color=line.lines[0].get_color(), alpha=0.45, markersize=4)


def curves(study: Study, path: Path) -> Figure | None:
    """Each headline metric's mean ± std against the first grid axis, one line per value of the second."""
    metrics = _metrics(study)
    if not metrics or not study.axes:
        return None
    figure, panels = _panels(len(metrics), 3.7, 3.8)
    second = study.axes[1] if len(study.axes) > 1 else None
    for panel, metric in zip(panels, metrics):
        for value in (study.values(second) if second else (None,)):
            rows = [row for row in study.rows if second is None or row.axis(second) == value]
            _curve(panel, study, metric, rows, f"{second} = {format_value(value)}" if second else None)
        _axis_scale(panel, study.values(study.axes[0]), study.axes[0])
        panel.set_ylabel(metric_label(study, metric), fontsize=LABEL_SIZE)
        if second:
            panel.legend(fontsize=8)
    title = (f"{study.title}: mean ± std over {study.scale.replicate_kind}, each replicate a dot\n"
             f"{study.scale.short()}")
    return _save(figure, path, "curves", title, study.scale.short())


def _cell_text(panel, image, change: np.ndarray, percent: bool, failed: np.ndarray) -> None:
    """Each cell's change written on it, white on dark colours and black on light ones; * where replicates
    failed."""
    for (row, column), value in np.ndenumerate(change):
        if not np.isfinite(value):
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        number = (f"{value:+.0f} %" if abs(value) >= 10 else f"{value:+.1f} %") if percent else f"{value:+.3g}"
        text = number + ("*" if failed[row, column] else "")
        panel.text(column, row, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")


def change_maps(study: Study, path: Path) -> Figure | None:
    """Heat maps over the two grid axes of each cell mean's change from the cell with the smallest value of both:
    percent for positive quantities, the absolute difference otherwise. Blue is better."""
    if len(study.axes) != 2:
        return None
    metrics = _metrics(study)
    figure, panels = _panels(len(metrics), 3.7, 3.9)
    rows_axis, columns_axis = study.axes
    failed = study.failed_cells()
    for panel, metric in zip(panels, metrics):
        means = study.grid(metric)[0]
        change, percent = stats.change_from(means, means[0, 0])
        # The colours span the sound cells, so a failed cell's runaway value (an NLL heading to −∞) hides nothing.
        finite = change[np.isfinite(change) & (~failed if (~failed).any() else True)]
        limit = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-12)
        image = panel.imshow(change, origin="lower", aspect="auto", vmin=-limit, vmax=limit,
                             cmap="RdBu" if HEADLINE_METRICS[metric].higher_is_better else "RdBu_r")
        unit = study.unit(metric)
        figure.colorbar(image, ax=panel, label="% change" if percent else f"difference{f' ({unit})' if unit else ''}")
        _cell_text(panel, image, change, percent, failed)
        panel.set_xticks(range(len(study.values(columns_axis))), [format_value(v) for v in study.values(columns_axis)])
        panel.set_yticks(range(len(study.values(rows_axis))), [format_value(v) for v in study.values(rows_axis)])
        panel.set_xlabel(columns_axis)
        panel.set_ylabel(rows_axis)
        panel.set_title(metric_label(study, metric), fontsize=LABEL_SIZE)
    baseline = f"{rows_axis} = {format_value(study.values(rows_axis)[0])}, " \
               f"{columns_axis} = {format_value(study.values(columns_axis)[0])}"
    marked = "; * some replicates failed" if failed.any() else ""
    title = f"{study.title}: change of the mean from ({baseline}); blue is better{marked}\n{study.scale.short()}"
    return _save(figure, path, "change", title, study.scale.short())


def _short_setting(study: Study, row: SettingRow) -> str:
    return format_setting([(name, value) for name, value in row.setting if name in study.axes]) or row.model


def pareto_plot(study: Study, path: Path) -> Figure | None:
    """Setting means in (reconstruction, MIG) (settings with a failed replicate left out), the Pareto front joined
    and labelled, and the augmented Tchebycheff picks marked."""
    rows, front, picks = pareto_rows(study)
    if len(rows) < 2:
        return None
    plt = _pyplot()
    costs = np.array([row.statistics[PARETO_COST][0] for row in rows])
    gains = np.array([row.statistics[PARETO_GAIN][0] for row in rows])
    figure, panel = plt.subplots(figsize=(10, 5))
    panel.scatter(costs[~front], gains[~front], color="grey", s=20, label="setting mean (dominated)")
    on_front = np.flatnonzero(front)[np.argsort(costs[front])]
    panel.plot(costs[on_front], gains[on_front], "o-", color="tab:red", markersize=6, label="Pareto front")
    # Front points are numbered on the plot and named in the legend: names beside close points would overlap.
    for number, index in enumerate(on_front, 1):
        panel.annotate(str(number), (costs[index], gains[index]), fontsize=9, xytext=(5, -11),
                       textcoords="offset points", color="tab:red")
        panel.plot([], [], " ", label=f"{number}: {_short_setting(study, rows[index])}")
    # Growing sizes, so picks of one setting for several weights stay visible around each other.
    for (weight, pick), marker, size in zip(picks.items(), ("s", "D", "o"), (110, 220, 360)):
        if pick is not None:
            index = rows.index(pick)
            panel.scatter(costs[index], gains[index], s=size, marker=marker,
                          facecolors="none", edgecolors="black", linewidths=1.4,
                          label=f"Tchebycheff pick, w = {weight:g}: {_short_setting(study, pick)}")
    panel.set_xlabel(f"{metric_label(study, PARETO_COST)} (setting mean)", fontsize=LABEL_SIZE)
    panel.set_ylabel(f"{metric_label(study, PARETO_GAIN)} (setting mean)", fontsize=LABEL_SIZE)
    panel.legend(fontsize=8, markerscale=0.6, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    title = (f"{study.title}: Pareto front minimising reconstruction and maximising MIG; Tchebycheff picks weigh\n"
             f"reconstruction by w and MIG by 1 − w (deviations normalised by their ranges). {study.scale.short()}")
    return _save(figure, path, "pareto", title, study.scale.short())


def study_figures(study: Study, figures_dir: Path) -> list[Figure]:
    """The study's figures that have data to show."""
    drawn = [draw(study, Path(figures_dir) / f"{study.slug}-{kind}.png")
             for kind, draw in (("curves", curves), ("change", change_maps), ("pareto", pareto_plot))]
    return [figure for figure in drawn if figure is not None]


def _box_labels(study: Study, rows: list[SettingRow]) -> list[str]:
    return [_short_setting(study, row) + (f" ({row.failed}/{row.count} {' or '.join(row.failures)})" if row.failed
                                          else "") for row in rows]


def distributions(ranking: Ranking, path: Path) -> Figure | None:
    """One metric's values over the replicates of every setting of every model compared: a box per setting, each
    replicate a dot, a panel per model (disentanglement_lib's study plots)."""
    metric, members = ranking.metric.alias, ranking.studies
    widths = [max(2.4, 0.55 * len(study.rows) + 1.0) for study in members]
    figure, panels = _panels(len(members), max(max(widths), 7.0 if len(members) == 1 else 0.0), 4.6, sharey=True,
                             width_ratios=widths)
    for panel, study in zip(panels, members):
        data = [np.array(row.values.get(metric, ()), dtype=float) for row in study.rows]
        data = [values[~np.isnan(values)] for values in data]
        positions = np.arange(1, len(data) + 1)
        panel.boxplot(data, positions=positions, widths=0.6, showfliers=False)
        for position, values in zip(positions, data):
            panel.plot(np.full(values.shape, position), values, ".", color="tab:blue", alpha=0.6)
        panel.set_xticks(positions, _box_labels(study, list(study.rows)), rotation=60, ha="right", fontsize=8)
        panel.set_title(f"{study.model}\n{study.scale.replicates_text()}, {study.scale.compact()}", fontsize=8)
        panel.set_ylabel(metric_label(study, metric), fontsize=LABEL_SIZE)
        panel.yaxis.set_tick_params(labelleft=True)
    scales = dict.fromkeys(study.scale.short() for study in members)
    devices = ", ".join(dict.fromkeys(device for study in members for device in study.scale.devices))
    common = next(iter(scales)) if len(scales) == 1 else \
        f"{devices}; {source_label(ranking.source)} data; steps and seeds per model above each panel"
    title = (f"{ranking.dataset} ({source_label(ranking.source)}): {HEADLINE_METRICS[metric].label} over the "
             f"replicates of each model and setting\n{common}")
    return _save(figure, path, "distribution", title,
                 "; ".join(f"{study.model}: {study.scale.short()}" for study in members))


def registered_plots(model: str, run_id: str, run_dir: Path, figures_dir: Path) -> list[Path]:
    """The plot the model's plugin registers, drawn for one run, its files named `<run id>-<name>`;
    none when no plugin registers a plot for the model."""
    from dlbench.plugins import get_plugins

    plots = get_plugins().plots
    if model not in plots:
        return []
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    drawing_dir = Path(tempfile.mkdtemp(dir=figures_dir, prefix=".plot-"))
    try:
        written = []
        for path in plots.get(model).factory(Path(run_dir), drawing_dir):
            target = figures_dir / f"{run_id}-{Path(path).name}"
            os.replace(path, target)  # same directory tree: an atomic rename of a complete file
            written.append(target)
        return written
    finally:
        shutil.rmtree(drawing_dir, ignore_errors=True)
