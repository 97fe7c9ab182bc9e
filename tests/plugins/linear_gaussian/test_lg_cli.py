"""`dlbench run` of a tiny linear-Gaussian grid, `dlbench plot` of its record, and the
fixed-point benchmark, through the command-line entry point."""
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from dlbench.cli import main

REPO = Path(__file__).resolve().parents[3]
PAPER_CONFIG = REPO / "gin" / "linear_gaussian.gin"
TINY = ["linear_gaussian_vae.num_starts=2", "linear_gaussian_vae.adamw_iterations=30",
        "linear_gaussian_vae.max_half_steps=2000", "linear_gaussian_vae.betas=[1, 4]",
        "linear_gaussian_vae.lambdas=[0, 2]"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    assert data.endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    argv = ["run", str(PAPER_CONFIG), "--out", str(out), "--device", "cpu", "--quiet"]
    for binding in TINY:
        argv += ["-p", binding]
    assert main(argv) == 0
    (record_file,) = out.glob("*/record.json")
    return record_file.parent


def test_run_records_the_grid(tiny_run):
    record = json.loads((tiny_run / "record.json").read_text())
    assert record["solution_axes"] == {"solver": ["fixed_point", "adamw"], "beta": [1.0, 4.0],
                                       "lambda": [0.0, 2.0], "start": [0, 1]}
    values = record["metrics"]["exact"]["values"]
    sap = np.array(values["sap"], dtype=float)
    assert sap.shape == (2, 2, 2, 2)
    assert np.all(np.abs(sap[0, 1, 0]) < 1e-8)  # fixed point, β = 4, λ = 0: collapsed
    assert np.all(sap[0, 1, 1] > 1e-3)  # λ = 2 keeps information
    assert np.array(values["no_minimiser"], dtype=bool)[0, 0, 1].all()  # β = 1, λ = 2
    assert record["dataset"]["n"] == 100


def test_plot_writes_valid_pngs(tiny_run, tmp_path, capsys):
    figures = tmp_path / "figures"
    capsys.readouterr()
    assert main(["plot", str(tiny_run), "--out", str(figures)]) == 0
    printed = re.findall(r"\S+\.png", capsys.readouterr().out)  # each written path
    expected = {f"{kind}_{solver}.png" for kind in ("boxplots_lambda0", "heatmaps")
                for solver in ("fixed_point", "adamw")}
    assert sorted(Path(p).name for p in printed) == sorted(expected)
    assert all(Path(p).parent == figures for p in printed)
    assert {p.name for p in figures.iterdir()} == expected
    for path in figures.iterdir():
        width, height = _png_size(path)
        assert width >= 600 and height >= 300, path.name
        assert path.stat().st_size > 10_000, path.name
        import matplotlib.image
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[:2] == (height, width)
        assert pixels.std() > 0.01  # not a blank canvas


def test_plot_of_a_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "no-such-run")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_bench_fixed_point_quick_prints_a_speedup(capsys):
    assert main(["bench", "linear_gaussian_fixed_point", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "fixed_point grid 25 cells x 4 starts, n=100" in out
    ratios = [float(r) for r in re.findall(r"(\d+(?:\.\d+)?)x\b", out)]
    assert ratios and all(r > 0 for r in ratios)
