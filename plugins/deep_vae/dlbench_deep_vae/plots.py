"""Figures of a deep model's run, for whatever axes its objective declares: training curves, the collapse diagnostic
(KL per latent and the number of active latents over training, per setting), reconstructions and latent traversals."""
from __future__ import annotations

import itertools
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


SYMBOLS = {"beta": "β", "lambda": "λ", "gamma": "γ", "lambda_od": "λ_od", "c_max": "C_max"}


def settings_of(record: dict) -> tuple[list[str], list[tuple]]:
    """The names of the record's solution axes but the seed, and every setting (cell) over them in grid order."""
    names = [name for name in record["solution_axes"] if name != "seed"]
    return names, list(itertools.product(*(record["solution_axes"][name] for name in names)))


def cell_label(names: list[str], cell: tuple) -> str:
    return ", ".join(f"{SYMBOLS.get(name, name)}={value:g}" for name, value in zip(names, cell))


def _continues(stage: str) -> bool:
    """A stage that continues a first stage's solutions (plugin 0.1 named them "lambda_stage" and "continuation")."""
    return stage.endswith("_continuation") or stage in ("lambda_stage", "continuation")


def curves(record: dict) -> dict[tuple, dict[str, np.ndarray]]:
    """{setting: {"step", term...: arrays over training, means over seeds}} from the record's loss history. A first
    stage's point (its label None on the later axes) belongs to every setting continued from it, and a continuation's
    steps follow the first stage's."""
    points: dict[tuple, dict[int, dict[str, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    axes = record["solution_axes"]
    names, _ = settings_of(record)
    first_steps = record["model"]["hyperparameters"].get("beta_steps") or 0
    for entry in record["fit"].get("history", []):
        offset = first_steps if _continues(entry["stage"]) else 0
        for position, label in enumerate(entry["solutions"]):
            values = dict(zip(axes, label))
            if entry["stage"].startswith("beta_stage"):  # plugin 0.1 labelled its β stage λ = 0, meaning every λ
                values["lambda"] = None
            choices = [axes[name] if values.get(name) is None else [values[name]] for name in names]
            for cell in itertools.product(*choices):
                step = points[cell][entry["step"] + offset]
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
    names, settings = settings_of(record)
    colours = plt.get_cmap("viridis")
    written = []
    figure, panels = plt.subplots(1, len(TERMS), figsize=(4.6 * len(TERMS), 3.6))
    for panel, (term, label) in zip(panels, TERMS):
        for index, cell in enumerate(settings):
            if term in cells.get(cell, {}):
                panel.plot(cells[cell]["step"], cells[cell][term], color=colours(index / max(1, len(settings) - 1)),
                           label=cell_label(names, cell))
        panel.set_xlabel("step")
        panel.set_ylabel(f"{label} (nats per image)")
        panel.set_yscale("symlog" if term != "recon" else "linear")
    panels[0].legend(fontsize=6)
    figure.suptitle(f"{record['model']['name']}: training loss terms (means over seeds)")
    figure.tight_layout()
    written.append(_save(figure, Path(out_dir) / "training_curves.png"))
    plt.close(figure)
    written.append(_kl_per_latent_figure(record, cells, out_dir, plt))
    figure, panel = plt.subplots(figsize=(6, 4))
    for index, cell in enumerate(settings):
        if "kl_per_latent" in cells.get(cell, {}):
            panel.plot(cells[cell]["step"], (cells[cell]["kl_per_latent"] > ACTIVE_KL).sum(-1),
                       label=cell_label(names, cell), color=colours(index / max(1, len(settings) - 1)))
    panel.set_xlabel("step")
    panel.set_ylabel(f"active latents (KL > {ACTIVE_KL})")
    panel.legend(fontsize=6)
    figure.tight_layout()
    written.append(_save(figure, Path(out_dir) / "active_latents.png"))
    plt.close(figure)
    return written


def _kl_per_latent_figure(record: dict, cells: dict, out_dir: Path, plt) -> Path:
    """One panel per setting: rows over the first axes, columns over the last."""
    names, settings = settings_of(record)
    columns = len(record["solution_axes"][names[-1]]) if names else 1
    rows = max(1, len(settings) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False, sharex=True)
    for index, cell in enumerate(settings or [()]):
        panel, data = grid[index // columns][index % columns], cells.get(cell, {})
        if "kl_per_latent" in data:
            panel.plot(data["step"], np.maximum(data["kl_per_latent"], 1e-6), linewidth=0.8)
            active = int((data["kl_per_latent"][-1] > ACTIVE_KL).sum())
            panel.set_title(f"{cell_label(names, cell)}: {active} active", fontsize=8)
        panel.set_yscale("log")
        panel.axhline(ACTIVE_KL, color="grey", linestyle=":", linewidth=0.8)
    figure.supxlabel("step")
    figure.supylabel("KL per latent (nats, mean over seeds)")
    figure.suptitle("informational collapse: each latent's KL to the prior over training")
    figure.tight_layout()
    path = _save(figure, Path(out_dir) / "kl_per_latent.png")
    plt.close(figure)
    return path


def _sheet(images: torch.Tensor) -> np.ndarray:
    """(rows, columns, C, H, W) uint8 -> one (rows·H, columns·W[, C]) picture."""
    rows, columns, channels, height, width = images.shape
    sheet = images.permute(0, 3, 1, 4, 2).reshape(rows * height, columns * width, channels).cpu().numpy()
    return sheet[..., 0] if channels == 1 else sheet


def _first_seed(tensor: torch.Tensor, depth: int) -> torch.Tensor:
    """Per-solution outputs (*solution_shape, ...) -> the first seed of every setting, settings flattened."""
    return tensor.select(depth - 1, 0).flatten(0, depth - 2)


def _image_figures(run_dir: Path, out_dir: Path, plt) -> list[Path]:
    record, model, dataset = load_run(run_dir, device="cpu")
    names, settings = settings_of(record)
    labels = [cell_label(names, cell) for cell in settings]
    depth = len(model.solution_shape)
    observations = dataset.sample(NUM_SHOWN, torch.Generator().manual_seed(0))[1]
    rows = torch.cat([observations.unsqueeze(0), _first_seed(model.reconstructions(observations), depth)])
    figure, panel = plt.subplots(figsize=(NUM_SHOWN * 0.8, 0.8 * len(rows) + 0.6))
    panel.imshow(_sheet(rows), cmap="gray")
    panel.set_yticks([32 + 64 * i for i in range(len(rows))], ["data", *labels], fontsize=7)
    panel.set_xticks([])
    panel.set_title(f"{record['model']['name']}: reconstructions (first seed)")
    figure.tight_layout()
    written = [_save(figure, Path(out_dir) / "reconstructions.png")]
    plt.close(figure)
    traversals = _first_seed(model.traversal(observations[0], TRAVERSAL_VALUES), depth)
    for cell, label, grid in zip(settings, labels, traversals):
        figure, panel = plt.subplots(figsize=(len(TRAVERSAL_VALUES) * 0.8, len(grid) * 0.8 + 0.5))
        panel.imshow(_sheet(grid), cmap="gray")
        panel.set_xticks([32 + 64 * i for i in range(len(TRAVERSAL_VALUES))], [f"{v:g}" for v in TRAVERSAL_VALUES],
                         fontsize=7)
        panel.set_yticks([32 + 64 * i for i in range(len(grid))], [f"z{i}" for i in range(len(grid))], fontsize=7)
        panel.set_title(f"latent traversals, {label} (first seed)", fontsize=8)
        figure.tight_layout()
        suffix = "_".join(f"{name}{value:g}" for name, value in zip(names, cell))
        written.append(_save(figure, Path(out_dir) / f"traversals_{suffix}.png"))
        plt.close(figure)
    return written
