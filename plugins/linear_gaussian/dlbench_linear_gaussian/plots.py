"""The paper's Figures 2 and 3 from a finished run record: box plots over starts against β at
λ = 0, and heat maps of the means over (β, λ), for NLL, SAP and I_m, per solver."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlbench import atomic_write, read_record

SCORES = (("nll", "NLL (nats)"), ("sap", "SAP"), ("i_m", "I_m (nats)"))


def _save(figure, path: Path) -> Path:
    atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=120))
    return path


def plot_run(run_dir: Path, out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = read_record(run_dir)
    axes = record["solution_axes"]
    values = {name: np.array(record["metrics"]["exact"]["values"][name], dtype=float)
              for name, _ in SCORES}
    no_minimiser = np.array(record["metrics"]["exact"]["values"]["no_minimiser"], dtype=bool)
    betas, lambdas = axes["beta"], axes["lambda"]
    written = []
    for solver_index, solver in enumerate(axes["solver"]):
        if 0 in lambdas:
            zero = lambdas.index(0)
            figure, panels = plt.subplots(1, len(SCORES), figsize=(4 * len(SCORES), 3.4))
            for panel, (name, label) in zip(panels, SCORES):
                per_beta = [values[name][solver_index, b, zero] for b in range(len(betas))]
                panel.boxplot([v[np.isfinite(v)] for v in per_beta],
                              tick_labels=[f"{b:g}" for b in betas])
                panel.set_xlabel("β")
                panel.set_ylabel(label)
            figure.suptitle(f"{solver}: λ = 0, {len(axes['start'])} starts per β")
            figure.tight_layout()
            written.append(_save(figure, Path(out_dir) / f"boxplots_lambda0_{solver}.png"))
            plt.close(figure)

        figure, panels = plt.subplots(1, len(SCORES), figsize=(4.4 * len(SCORES), 3.6))
        for panel, (name, label) in zip(panels, SCORES):
            means = np.nanmean(values[name][solver_index], axis=-1)
            flagged = no_minimiser[solver_index].mean(axis=-1) > 0.5
            # A diverging cell's mean is an artefact of where the solver stopped: leave it out
            # of the colour scale, which would otherwise hide every other cell's differences.
            colour_map = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
            image = panel.imshow(np.where(flagged, np.nan, means), origin="lower",
                                 aspect="auto", cmap=colour_map)
            figure.colorbar(image, ax=panel, label=f"mean {label}")
            panel.set_xticks(range(len(lambdas)), [f"{v:g}" for v in lambdas])
            panel.set_yticks(range(len(betas)), [f"{v:g}" for v in betas])
            panel.set_xlabel("λ")
            panel.set_ylabel("β")
            for b, lam in zip(*np.nonzero(flagged)):
                panel.text(lam, b, "no min.", ha="center", va="center", color="black",
                           fontsize=7)
        figure.suptitle(f"{solver}: means over {len(axes['start'])} starts "
                        "(grey 'no min.': most starts flagged as having no finite minimiser)")
        figure.tight_layout()
        written.append(_save(figure, Path(out_dir) / f"heatmaps_{solver}.png"))
        plt.close(figure)
    return written
