"""Figures of a β-VAE / λβ-VAE run: training curves, the collapse diagnostic (KL per latent and the number of
active latents over training, per β and λ), reconstructions and latent traversals."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from dlbench import atomic_write, load_run, read_record
from dlbench_deep_vae.model import ACTIVE_KL

STATE_FILE = "state.npz"
TERMS = (("recon", "reconstruction"), ("kl", "KL"), ("l2", "‖x − x̂‖²"))
TRAVERSAL_VALUES = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
NUM_SHOWN = 8


def _save(figure, path: Path) -> Path:
    atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=100))
    return path


def curves(record: dict) -> dict[tuple, dict[str, np.ndarray]]:
    """{(β, λ): {"step", term...: arrays over training, means over seeds}} from the record's loss history; a λβ
    cell's curve is its (β, seed)'s β stage followed by its own λ stage."""
    points: dict[tuple, dict[int, dict[str, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    lambdas = record["solution_axes"]["lambda"]
    beta_steps = record["model"]["hyperparameters"].get("beta_steps") or 0
    for entry in record["fit"].get("history", []):
        beta_stage = entry["stage"].startswith("beta_stage")
        offset = 0 if beta_stage or record["model"]["name"] == "beta_vae" else beta_steps
        for position, (beta, lam, _seed) in enumerate(entry["solutions"]):
            for cell_lambda in (lambdas if beta_stage else [lam]):
                step = points[(beta, cell_lambda)][entry["step"] + offset]
                for term in (*(t for t, _ in TERMS), "kl_per_latent"):
                    if term in entry and entry[term][position] is not None:
                        step[term].append(entry[term][position])
    result = {}
    for cell, by_step in points.items():
        steps = sorted(by_step)
        result[cell] = {"step": np.array(steps)}
        for term in (*(t for t, _ in TERMS), "kl_per_latent"):
            if all(by_step[s][term] for s in steps):
                result[cell][term] = np.array([np.mean(by_step[s][term], axis=0) for s in steps])
    return result


def plot_run(run_dir: Path, out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = read_record(run_dir)
    cells = curves(record)
    written = _history_figures(record, cells, out_dir, plt) if cells else []  # a run without history has no curves
    if (Path(run_dir) / STATE_FILE).is_file():  # a record kept without its weights still gets its curves
        written += _image_figures(run_dir, out_dir, plt)
    return written


def _history_figures(record: dict, cells: dict, out_dir: Path, plt) -> list[Path]:
    betas, lambdas = record["solution_axes"]["beta"], record["solution_axes"]["lambda"]
    written = []
    colours = plt.get_cmap("viridis")

    figure, panels = plt.subplots(1, len(TERMS), figsize=(4.6 * len(TERMS), 3.6))
    for panel, (term, label) in zip(panels, TERMS):
        for index, ((beta, lam), data) in enumerate(sorted(cells.items())):
            if term in data:
                panel.plot(data["step"], data[term], color=colours(index / max(1, len(cells) - 1)),
                           label=f"β={beta:g}, λ={lam:g}")
        panel.set_xlabel("step")
        panel.set_ylabel(label)
        panel.set_yscale("symlog" if term != "recon" else "linear")
    panels[0].legend(fontsize=6)
    figure.suptitle("training loss terms (means over seeds)")
    figure.tight_layout()
    written.append(_save(figure, Path(out_dir) / "training_curves.png"))
    plt.close(figure)

    figure, grid = plt.subplots(len(betas), len(lambdas), figsize=(3.2 * len(lambdas), 2.4 * len(betas)),
                                squeeze=False, sharex=True)
    for row, beta in enumerate(betas):
        for column, lam in enumerate(lambdas):
            panel, data = grid[row][column], cells.get((beta, lam), {})
            if "kl_per_latent" in data:
                panel.plot(data["step"], np.maximum(data["kl_per_latent"], 1e-6), linewidth=0.8)
                active = int((data["kl_per_latent"][-1] > ACTIVE_KL).sum())
                panel.set_title(f"β={beta:g}, λ={lam:g}: {active} active", fontsize=8)
            panel.set_yscale("log")
            panel.axhline(ACTIVE_KL, color="grey", linestyle=":", linewidth=0.8)
    figure.supxlabel("step")
    figure.supylabel("KL per latent (nats, mean over seeds)")
    figure.suptitle("informational collapse: each latent's KL to the prior over training")
    figure.tight_layout()
    written.append(_save(figure, Path(out_dir) / "kl_per_latent.png"))
    plt.close(figure)

    figure, panel = plt.subplots(figsize=(6, 4))
    for index, ((beta, lam), data) in enumerate(sorted(cells.items())):
        if "kl_per_latent" in data:
            panel.plot(data["step"], (data["kl_per_latent"] > ACTIVE_KL).sum(-1), label=f"β={beta:g}, λ={lam:g}",
                       color=colours(index / max(1, len(cells) - 1)))
    panel.set_xlabel("step")
    panel.set_ylabel(f"active latents (KL > {ACTIVE_KL})")
    panel.legend(fontsize=6)
    figure.tight_layout()
    written.append(_save(figure, Path(out_dir) / "active_latents.png"))
    plt.close(figure)
    return written


def _sheet(images: torch.Tensor) -> np.ndarray:
    """(rows, columns, C, H, W) uint8 -> one (rows·H, columns·W[, C]) picture."""
    rows, columns, channels, height, width = images.shape
    sheet = images.permute(0, 3, 1, 4, 2).reshape(rows * height, columns * width, channels).cpu().numpy()
    return sheet[..., 0] if channels == 1 else sheet


def _image_figures(run_dir: Path, out_dir: Path, plt) -> list[Path]:
    _, model, dataset = load_run(run_dir, device="cpu")
    observations = dataset.sample(NUM_SHOWN, torch.Generator().manual_seed(0))[1]
    betas, lambdas = model.betas, model.lambdas
    reconstructed = model.reconstructions(observations)[:, :, 0]  # the first seed of each (β, λ)
    rows = torch.cat([observations.unsqueeze(0), reconstructed.flatten(0, 1)])
    figure, panel = plt.subplots(figsize=(NUM_SHOWN * 0.8, 0.8 * len(rows) + 0.6))
    panel.imshow(_sheet(rows), cmap="gray")
    panel.set_yticks([32 + 64 * i for i in range(len(rows))],
                     ["data"] + [f"β={b:g}, λ={lam:g}" for b in betas for lam in lambdas], fontsize=7)
    panel.set_xticks([])
    panel.set_title("reconstructions (first seed)")
    figure.tight_layout()
    written = [_save(figure, Path(out_dir) / "reconstructions.png")]
    plt.close(figure)
    traversals = model.traversal(observations[0], TRAVERSAL_VALUES)[:, :, 0]  # (β, λ, d, values, C, H, W)
    for b, beta in enumerate(betas):
        for lam_index, lam in enumerate(lambdas):
            grid = traversals[b, lam_index]
            figure, panel = plt.subplots(figsize=(len(TRAVERSAL_VALUES) * 0.8, len(grid) * 0.8 + 0.5))
            panel.imshow(_sheet(grid), cmap="gray")
            panel.set_xticks([32 + 64 * i for i in range(len(TRAVERSAL_VALUES))],
                             [f"{v:g}" for v in TRAVERSAL_VALUES], fontsize=7)
            panel.set_yticks([32 + 64 * i for i in range(len(grid))], [f"z{i}" for i in range(len(grid))],
                             fontsize=7)
            panel.set_title(f"latent traversals, β={beta:g}, λ={lam:g} (first seed)", fontsize=8)
            figure.tight_layout()
            written.append(_save(figure, Path(out_dir) / f"traversals_beta{beta:g}_lambda{lam:g}.png"))
            plt.close(figure)
    return written
