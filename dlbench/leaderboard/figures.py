"""The leaderboard's figures (matplotlib, Agg, each PNG written atomically): headline metrics against β
with one line per λ (the paper's Figures 4 and 5), percent-change heat maps relative to the (β = 1, λ = 0)
cell, and the (reconstruction ↓, MIG ↑) Pareto front with the augmented Tchebycheff picks; plus, for a
model that registers its own plot (the linear-Gaussian study's Figures 2 and 3), that plot per run."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dlbench import atomic_write
from dlbench.leaderboard.tables import PARETO_COST, PARETO_GAIN, Study
from dlbench.results import HEADLINE_METRICS

DPI = 90


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=DPI))
    _pyplot().close(figure)
    return path


def _metrics_with_values(study: Study) -> list[str]:
    return [alias for alias in HEADLINE_METRICS if not np.isnan(study.means[alias]).all()]


def _beta_axis(panel, betas: tuple[float, ...]) -> None:
    if min(betas) > 0:  # β doubles along the paper's grid
        panel.set_xscale("log", base=2)
    panel.set_xticks(betas, [f"{b:g}" for b in betas])
    panel.minorticks_off()
    panel.set_xlabel("β")


def _direction(alias: str) -> str:
    return "↑" if HEADLINE_METRICS[alias].higher_is_better else "↓"


def metric_lines(study: Study, path: Path) -> Path | None:
    """Each headline metric's cell mean (± std over replicates) against β, one line per λ."""
    aliases = _metrics_with_values(study)
    if not aliases:
        return None
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(aliases), figsize=(3.6 * len(aliases), 3.2), squeeze=False)
    for panel, alias in zip(panels[0], aliases):
        for column, lam in enumerate(study.lambdas):
            means, stds = study.means[alias][:, column], study.stds[alias][:, column]
            known = ~np.isnan(means)
            panel.errorbar(np.array(study.betas)[known], means[known], yerr=stds[known], marker="o", markersize=3,
                           capsize=2, label=f"λ = {lam:g}")
        _beta_axis(panel, study.betas)
        panel.set_ylabel(f"{HEADLINE_METRICS[alias].label} {_direction(alias)}")
    labelled = next((panel for panel in panels[0] if panel.get_legend_handles_labels()[0]), None)
    if labelled is not None:  # a metric with no known value draws no line to name
        labelled.legend(fontsize=7)
    figure.suptitle(f"{study.title}: mean ± std over replicates", fontsize=9)
    return _save(figure, path)


def percent_change_maps(study: Study, path: Path) -> Path | None:
    """Heat maps of each (β, λ) cell's mean as % change from the (β = 1, λ = 0) cell; None without it."""
    changes = {alias: study.percent_change(alias) for alias in _metrics_with_values(study)}
    changes = {alias: change for alias, change in changes.items() if change is not None}
    if not changes:
        return None
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(changes), figsize=(3.8 * len(changes), 3.4), squeeze=False)
    for panel, (alias, change) in zip(panels[0], changes.items()):
        finite = change[np.isfinite(change)]
        limit = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-9)
        image = panel.imshow(change, origin="lower", aspect="auto", cmap="RdBu_r" if _direction(alias) == "↓"
                             else "RdBu", vmin=-limit, vmax=limit)
        figure.colorbar(image, ax=panel, label="% change")
        for (row, column), value in np.ndenumerate(change):
            if np.isfinite(value):
                panel.text(column, row, f"{value:+.0f}", ha="center", va="center", fontsize=6)
        panel.set_xticks(range(len(study.lambdas)), [f"{v:g}" for v in study.lambdas])
        panel.set_yticks(range(len(study.betas)), [f"{v:g}" for v in study.betas])
        panel.set_xlabel("λ")
        panel.set_ylabel("β")
        panel.set_title(f"{HEADLINE_METRICS[alias].label} {_direction(alias)}", fontsize=9)
    figure.suptitle(f"{study.title}: % change of the mean from (β = 1, λ = 0); blue is better", fontsize=9)
    return _save(figure, path)


def pareto_plot(study: Study, path: Path) -> Path | None:
    """Cell means in (reconstruction, MIG), the Pareto front joined, and the Tchebycheff picks marked."""
    costs, gains = study.means[PARETO_COST], study.means[PARETO_GAIN]
    known = ~(np.isnan(costs) | np.isnan(gains))
    if not known.any():
        return None
    plt = _pyplot()
    front = study.pareto_front()
    figure, panel = plt.subplots(figsize=(6, 4.4))
    panel.scatter(costs[known & ~front], gains[known & ~front], color="grey", s=18, label="cell mean")
    order = np.argsort(costs[front])
    panel.plot(costs[front][order], gains[front][order], "o-", color="tab:red", markersize=5, label="Pareto front")
    for (row, column), is_known in np.ndenumerate(known):
        if is_known:
            panel.annotate(f"β{study.betas[row]:g},λ{study.lambdas[column]:g}",
                           (costs[row, column], gains[row, column]), fontsize=6, xytext=(3, 3),
                           textcoords="offset points")
    for (weight, pick), marker in zip(study.tchebycheff_picks().items(), ("s", "D", "^")):
        if pick is not None:
            cell = (study.betas.index(pick[0]), study.lambdas.index(pick[1]))
            panel.scatter(costs[cell], gains[cell], s=140, marker=marker, facecolors="none", edgecolors="black",
                          linewidths=1.4, label=f"Tchebycheff w={weight:g}: β={pick[0]:g}, λ={pick[1]:g}")
    panel.set_xlabel(f"{HEADLINE_METRICS[PARETO_COST].label} (mean) ↓")
    panel.set_ylabel(f"{HEADLINE_METRICS[PARETO_GAIN].label} (mean) ↑")
    panel.legend(fontsize=7)
    panel.set_title(study.title, fontsize=8)
    return _save(figure, path)


def study_figures(study: Study, figures_dir: Path) -> dict[str, Path]:
    """kind ("lines", "percent_change", "pareto") → the written figure, for the kinds with data."""
    drawn = {kind: draw(study, Path(figures_dir) / f"{study.slug}-{kind}.png")
             for kind, draw in (("lines", metric_lines), ("percent_change", percent_change_maps),
                                ("pareto", pareto_plot))}
    return {kind: path for kind, path in drawn.items() if path is not None}


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
