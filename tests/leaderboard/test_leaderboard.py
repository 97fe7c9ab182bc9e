"""The leaderboard's numbers against brute force over the fixture arrays, its sources kept apart, and its
files: README.md, index.html (figures linked, or embedded), figures that show data, copies of the records. (Models
compared, the scale everywhere and unverified records: test_models.py.)"""
from __future__ import annotations

import argparse
import base64
import itertools
import re
import shutil

import numpy as np
import pytest
from matplotlib.image import imread

from dlbench.cli import main
from dlbench.leaderboard import stats
from dlbench.leaderboard.build import build_leaderboard
from dlbench.leaderboard.fixtures import deep_record, linear_record, write_run
from dlbench.leaderboard.scale import source_label
from dlbench.leaderboard.tables import pareto_rows

BETAS, LAMBDAS, SEEDS = [1.0, 4.0, 16.0], [0.0, 2.0], [0, 1, 2]
SHAPE = (len(BETAS), len(LAMBDAS), len(SEEDS))
DEEP = {("dsprites", "official"): 1, ("dsprites", "procedural"): 2, ("shapes3d", "procedural"): 3}
ALIASES = {"mig": "mig.mig", "sap": "sap_score.sap", "i_m": "i_m.i_m", "reconstruction": "training.reconstruction"}


def deep_scores(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = {name: rng.random(SHAPE) for name in ALIASES.values()}
    scores["mig.mig"][1, 0] = scores["mig.mig"][1, 1]  # two cells with equal MIG: a shared rank
    return scores


LINEAR_STARTS = 3
LINEAR_EXACT = {
    "sap": np.random.default_rng(7).random((1, 3, 2, LINEAR_STARTS)),
    "i_m": np.random.default_rng(8).random((1, 3, 2, LINEAR_STARTS)),
    "nll": np.random.default_rng(9).random((1, 3, 2, LINEAR_STARTS)) + 4,
    "b_norm": np.zeros((1, 3, 2, LINEAR_STARTS)), "no_minimiser": np.zeros((1, 3, 2, LINEAR_STARTS), bool),
    "converged": np.ones((1, 3, 2, LINEAR_STARTS), bool),
}
LINEAR_EXACT["converged"][0, 0, 1, :2] = False  # β = 1, λ = 2: two of the three starts did not converge


def brute_cells(dataset: str, source: str) -> dict[str, dict[tuple[float, float], np.ndarray]]:
    """alias → (β, λ) → the seeds' values, straight from the arrays the records were written from."""
    if source == "synthetic":
        arrays = {"sap": LINEAR_EXACT["sap"][0], "i_m": LINEAR_EXACT["i_m"][0],
                  "reconstruction": LINEAR_EXACT["nll"][0]}
    else:
        scores = deep_scores(DEEP[(dataset, source)])
        arrays = {alias: scores[name] for alias, name in ALIASES.items()}
    return {alias: {(b, lam): values[i, j] for (i, b), (j, lam) in itertools.product(enumerate(BETAS),
                                                                                     enumerate(LAMBDAS))}
            for alias, values in arrays.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for (dataset, source), seed in DEEP.items():
        write_run(root, deep_record(dataset, source, BETAS, LAMBDAS, SEEDS, deep_scores(seed)))
    write_run(root, linear_record(BETAS, LAMBDAS, LINEAR_STARTS, LINEAR_EXACT))
    out = tmp_path_factory.mktemp("leaderboard")
    return build_leaderboard([root], out), out, root


def test_rows_are_means_stds_and_counts_over_seeds(built):
    content = built[0].content
    assert content.record_count == 4 and content.solution_count == 3 * 18 + 18
    assert all(ranking.compares_models for ranking in content.rankings)  # one study per model on each dataset
    checked = 0
    for ranking in content.rankings:
        cells = brute_cells(ranking.dataset, ranking.source)[ranking.metric.alias]
        for row in ranking.rows:
            values = cells[(row.axis("beta"), row.axis("lambda"))]
            mean, std, count = row.statistics[ranking.metric.alias]
            assert (mean, std, count) == (pytest.approx(values.mean()), pytest.approx(values.std()), values.size)
            checked += 1
    assert checked == 3 * 4 * 6 + 3 * 6  # deep: 4 metrics × 6 cells; linear: SAP, I_m, reconstruction


def test_ranks_are_competition_ranks_of_the_means_and_failed_settings_come_last(built):
    for ranking in built[0].content.rankings:
        sound = [row for row in ranking.rows if not row.failed]
        means = [row.statistics[ranking.metric.alias][0] for row in sound]
        better = (lambda a, b: a > b) if ranking.metric.higher_is_better else (lambda a, b: a < b)
        brute = [1 + sum(better(other, mine) for other in means) for mine in means]
        assert list(ranking.ranks[:len(sound)]) == brute and ranking.rows[:len(sound)] == tuple(sound)
        assert brute == sorted(brute)  # best first
        assert all(np.isnan(rank) for rank in ranking.ranks[len(sound):])  # then the failed ones, unranked
        assert ranking.unranked == len(ranking.rows) - len(sound)
    linear = [r for r in built[0].content.rankings if r.source == "synthetic"]
    assert all(r.rows[-1].setting == (("solver", "fixed_point"), ("beta", 1.0), ("lambda", 2.0)) for r in linear)
    mig = next(r for r in built[0].content.rankings if (r.dataset, r.source, r.metric.alias) ==
               ("dsprites", "official", "mig"))
    assert len(set(mig.ranks)) == len(mig.ranks) - 1  # the two equal cells share a rank


def test_official_and_stand_in_rows_are_never_ranked_together(built):
    rankings = built[0].content.rankings
    assert {(r.dataset, r.source) for r in rankings} == {*DEEP, ("linear_gaussian", "synthetic")}
    for ranking in rankings:
        assert {row.source for row in ranking.rows} == {ranking.source}
        assert {row.dataset for row in ranking.rows} == {ranking.dataset}
    readme = (built[1] / "README.md").read_text()
    sections = re.split(r"\n## ", readme)
    official = next(s for s in sections if s.startswith("dsprites: official data"))
    stand_in = next(s for s in sections if s.startswith("dsprites: stand-in (procedural) data"))
    assert "| stand-in (procedural) |" not in official and "| official |" in official
    assert "| official |" not in stand_in and "| stand-in (procedural) |" in stand_in
    assert source_label("procedural") == "stand-in (procedural)"


def test_change_pareto_and_tchebycheff_against_brute_force(built):
    studies = [s for s in built[0].content.studies if s.source != "synthetic"]
    assert len(studies) == 3
    for study in studies:
        assert study.axes == ("beta", "lambda")
        cells = brute_cells(study.dataset, study.source)
        means = {alias: {cell: values.mean() for cell, values in by_cell.items()} for alias, by_cell in cells.items()}
        for alias in ALIASES:  # every fixture score is positive: percent changes
            grid = study.grid(alias)[0]
            change, percent = stats.change_from(grid, grid[0, 0])
            assert percent
            for (i, b), (j, lam) in itertools.product(enumerate(BETAS), enumerate(LAMBDAS)):
                baseline = means[alias][(1.0, 0.0)]
                assert change[i, j] == pytest.approx(100 * (means[alias][(b, lam)] - baseline) / abs(baseline))

        points = {cell: (means["reconstruction"][cell], means["mig"][cell]) for cell in means["mig"]}
        dominated = {cell for cell, (cost, gain) in points.items() for other, (c, g) in points.items()
                     if other != cell and c <= cost and g >= gain and (c < cost or g > gain)}
        rows, front, picks = pareto_rows(study)
        assert {(row.axis("beta"), row.axis("lambda")) for row, on in zip(rows, front) if on} == set(points) - dominated

        costs = [p[0] for p in points.values()]
        gains = [p[1] for p in points.values()]
        for weight, pick in picks.items():
            def score(cell):
                cost, gain = points[cell]
                d_cost = (cost - min(costs)) / (max(costs) - min(costs))
                d_gain = (max(gains) - gain) / (max(gains) - min(gains))
                return max(weight * d_cost, (1 - weight) * d_gain) + 0.001 * (weight * d_cost + (1 - weight) * d_gain)
            assert (pick.axis("beta"), pick.axis("lambda")) == min(points, key=score)
            assert front[rows.index(pick)]  # a Tchebycheff pick is Pareto optimal


def test_stats_edge_cases():
    np.testing.assert_array_equal(stats.ranks(np.array([0.5, 0.9, 0.5, np.nan, 0.1]), True), [2, 1, 2, np.nan, 4])
    np.testing.assert_array_equal(stats.ranks(np.array([3.0, 1.0, 2.0]), False), [3, 1, 2])
    np.testing.assert_array_equal(stats.percent_change(np.array([-2.0, -1.0]), -2.0), [0.0, 50.0])
    assert np.isnan(stats.percent_change(np.array([1.0]), 0.0)).all()
    front = stats.pareto_front(np.array([1.0, 1.0, 2.0, 0.5, np.nan]), np.array([1.0, 1.0, 3.0, 0.2, 9.0]))
    np.testing.assert_array_equal(front, [True, True, True, True, False])  # equal points do not dominate each other
    assert stats.tchebycheff_pick(np.array([1.0, 1.0]), np.array([2.0, 2.0]), 0.5) == 0  # no spread: the first
    assert stats.tchebycheff_pick(np.array([np.nan]), np.array([1.0]), 0.5) is None
    # Δcost = (0, 0.5, 1), Δgain = (1, 0.1, 0): w = 0.1 scores 0.9, 0.09, 0.1 (+ augmentation); w = 0.9 0.1, 0.45, 0.9.
    assert stats.tchebycheff_pick(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.9, 1.0]), 0.1) == 1
    assert stats.tchebycheff_pick(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.9, 1.0]), 0.9) == 0
    # Percent change only for positive quantities: a negative log-likelihood gets its absolute difference.
    change, percent = stats.change_from(np.array([2.0, 3.0]), 2.0)
    assert percent and change.tolist() == [0.0, 50.0]
    change, percent = stats.change_from(np.array([-10.0, -1.0, np.nan]), -10.0)
    assert not percent and change[:2].tolist() == [0.0, 9.0]


@pytest.mark.parametrize("seed", range(4))
def test_welch_test_against_scipy_on_the_samples(seed):
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(seed)
    first, second = rng.normal(0, 1, 2 + seed), rng.normal(0.5, 2, 3 + 2 * seed)
    t, df, p = stats.welch_test((first.mean(), first.std(), first.size), (second.mean(), second.std(), second.size))
    expected = ttest_ind(first, second, equal_var=False)
    assert (t, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert df == pytest.approx(expected.df)


def test_welch_test_without_spread_and_with_too_few_values():
    assert stats.welch_test((1.0, 0.0, 3), (1.0, 0.0, 3))[2] == 1.0
    t, _, p = stats.welch_test((2.0, 0.0, 3), (1.0, 0.0, 3))
    assert t == np.inf and p == 0.0
    with pytest.raises(ValueError):
        stats.welch_test((1.0, 0.0, 1), (1.0, 0.5, 5))


def test_every_figure_exists_and_shows_data(built):
    result, out, _ = built
    figures = sorted((out / "figures").glob("*.png"))
    assert figures == sorted(p for p in result.written if p.suffix == ".png")
    names = {p.name for p in figures}
    for study in result.content.studies:
        expected = ["curves", "change"] + (["pareto"] if study.source != "synthetic" else [])
        assert {f"{study.slug}-{kind}.png" for kind in expected} <= names
    distributions = {f"{r.slug}-distribution.png" for r in result.content.rankings}
    assert distributions <= names and len(distributions) == 3 * 4 + 3
    linear_run = next(run for run, _, _ in result.content.run_figures)
    assert {f"{linear_run}-boxplots_lambda0_fixed_point.png", f"{linear_run}-heatmaps_fixed_point.png"} <= names
    assert len(figures) == 3 * 3 + 2 + len(distributions) + 2
    for path in figures:
        pixels = imread(path)[..., :3]
        assert pixels.std() > 0.05, path  # not a blank canvas


def test_readme_and_page_name_runs_versions_and_embed_everything(built):
    result, out, root = built
    readme = (out / "README.md").read_text()
    page = (out / "index.html").read_text()
    mig = next(r for r in result.content.rankings if (r.dataset, r.source, r.metric.alias) ==
               ("shapes3d", "procedural", "mig"))
    best = mig.rows[0]
    mean, std, count = best.statistics["mig"]
    line = next(line for line in readme.splitlines() if line.startswith(f"| 1 | {best.model} | beta=")
                and "| stand-in (procedural) |" in line and f"{mean:.4g} ± {std:.4g}" in line)
    assert f"| {count} |" in line and best.run_ids[0] in line and "dlbench-fixture 0.1.0" in line
    assert best.run_ids[0].rsplit("-", 1)[1] in line and f"records/{best.run_ids[0]}/record.json" in line
    for run_dir in root.iterdir():
        if run_dir.is_dir():
            kept = out / "records" / run_dir.name / "record.json"
            assert kept.read_bytes() == (run_dir / "record.json").read_bytes()

    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "<link" not in page and "@import" not in page
    # By default the page links each figure beside it (stored once); --embed-figures carries them inside.
    linked = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert sorted(linked) == sorted(f"figures/{p.name}" for p in (out / "figures").glob("*.png"))
    embedded_out = out.parent / f"{out.name}-embedded"
    build_leaderboard([root], embedded_out, embed_figures=True)
    embedded_page = (embedded_out / "index.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', embedded_page)
    assert len(images) == len(list((out / "figures").glob("*.png")))
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert [base64.b64decode(src.split(",", 1)[1]) for src in images] == [(out / src).read_bytes() for src in linked]
    assert page.count('<table class="sortable ranking"') == len(result.content.rankings)
    assert "<script>" in page and "sortTable" in page
    flagged = [line for line in readme.splitlines() if "not converged" in line and line.startswith("|")]
    assert len(flagged) == 3  # in each of the linear model's three rankings, last and unranked
    assert all(line.startswith("| - | linear_gaussian_vae | solver=fixed_point, beta=1, lambda=2 (2/3 not converged) |")
               for line in flagged)


def test_command_rebuilds_and_drops_what_is_no_longer_there(built, tmp_path, capsys):
    from dlbench.leaderboard import add_commands

    root = tmp_path / "runs"
    run_dir = write_run(root, deep_record("shapes3d", "official", BETAS, [0.0], [0, 1], {
        "mig.mig": np.arange(6.0).reshape(3, 1, 2)}))
    out = tmp_path / "board"
    (out / "figures").mkdir(parents=True)
    (out / "README.md").write_text("# dlbench leaderboard\n\nBuilt from 3 run records.\n")  # an earlier build's
    (out / "figures" / "old-study-lines.png").write_bytes(b"stale")
    (out / "records").mkdir()
    (out / "records" / "old-run.json").write_text("{}")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["leaderboard", str(root), "--out", str(out)])
    assert args.handler(args) == 0
    assert "leaderboard of 1 runs" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "records").iterdir()) == [run_dir.name]
    assert not (out / "figures" / "old-study-lines.png").exists()
    assert "shapes3d: official data" in (out / "README.md").read_text()


def test_the_leaderboard_and_the_report_regenerate_in_place_from_the_records_they_keep(built, tmp_path, capsys):
    # README.md's command for the committed leaderboard/; the files of others beside the pages are left alone
    board = tmp_path / "board"
    shutil.copytree(built[1], board)
    (board / "notes.txt").write_text("mine")
    for argv in (["report", "paper", board / "records", "--out", board],
                 ["leaderboard", board / "records", "--out", board],
                 ["report", "paper", board / "records", "--out", board]):
        assert main([str(part) for part in argv]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in board.iterdir()) == ["README.md", "figures", "index.html", "notes.txt", "paper.md",
                                                       "records"]
    assert (board / "notes.txt").read_text() == "mine"
    assert "Built from 4 run records" in (board / "README.md").read_text()


def test_the_leaderboard_regenerates_from_the_records_it_keeps(built, tmp_path):
    _, out, _ = built
    again = build_leaderboard([out / "records"], tmp_path / "again")
    first_tables = [line for line in (out / "README.md").read_text().splitlines() if line.startswith("|")]
    second_tables = [line for line in (tmp_path / "again" / "README.md").read_text().splitlines()
                     if line.startswith("|")]
    assert first_tables == second_tables and again.content.record_count == 4
