"""Models compared: synthetic records of the disentanglement_lib zoo, each model with its own axes (factor_vae's
gamma, dip_vae_i's lambda_od, annealed_vae's c_max, ...), ranked together per dataset and metric against brute
force; every model drawn over its own axes; the scale on every banner row, caption and figure title; failed and
unverified settings marked."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dlbench.leaderboard.build import build_leaderboard
from dlbench.leaderboard.fixtures import deep_record, write_run, zoo_record

SEEDS = [0, 1, 2]
ZOO = {  # model → its setting axes, as model-zoo.md's study grids declare them
    "beta_vae": {"beta": [1.0, 4.0, 16.0], "lambda": [0.0]},
    "beta_tc_vae": {"beta": [1.0, 2.0, 4.0, 6.0, 8.0, 10.0]},
    "factor_vae": {"gamma": [10.0, 20.0, 30.0, 40.0, 50.0, 100.0]},
    "dip_vae_i": {"lambda_od": [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]},
    "dip_vae_ii": {"lambda_od": [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]},
    "annealed_vae": {"c_max": [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]},
}
NAMES = {"mig": "mig.mig", "sap": "sap_score.sap", "i_m": "i_m.i_m", "reconstruction": "training.reconstruction"}
STEPS = 3_000  # 1 % of disentanglement_lib's 300,000


def scores_of(model: str, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(len(model) * 7 + sum(shape))
    scores = {name: rng.random(shape) + (100.0 if alias == "reconstruction" else 0.0)
              for alias, name in NAMES.items()}
    scores["training.diverged_at_step"] = np.full(shape, -1.0)
    if model == "factor_vae":
        scores["training.diverged_at_step"][-1, 0] = 1200.0  # γ = 100, seed 0 diverged
    return scores


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    runs = tmp_path_factory.mktemp("zoo")
    expected = {}
    for model, axes in ZOO.items():
        scores = scores_of(model, (*map(len, axes.values()), len(SEEDS)))
        write_run(runs, zoo_record(model, "dsprites", "procedural", axes, SEEDS, scores, training_steps=STEPS))
        expected[model] = (axes, scores)
    lambdas = {"beta": [1.0, 4.0, 16.0], "lambda": [0.0, 8.0]}
    scores = scores_of("lambda_beta_vae", (3, 2, len(SEEDS)))
    write_run(runs, deep_record("dsprites", "procedural", lambdas["beta"], lambdas["lambda"], SEEDS, scores,
                                beta_steps=2_000, training_steps=500))
    expected["lambda_beta_vae"] = (lambdas, scores)
    out = tmp_path_factory.mktemp("board")
    return build_leaderboard([runs], out), out, runs, expected


def test_one_table_per_metric_ranks_every_models_settings(zoo):
    built, _, _, expected = zoo
    rankings = built.content.rankings
    assert [(r.dataset, r.metric.alias, r.compares_models) for r in rankings] == [
        ("dsprites", alias, True) for alias in NAMES]
    for ranking in rankings:
        assert {row.model for row in ranking.rows} == set(expected)
        assert len(ranking.rows) == sum(len(np.zeros([len(v) for v in axes.values()]).ravel())
                                        for axes, _ in expected.values())
        for row in ranking.rows:  # brute force: the setting's values over its seeds in the fixture's arrays
            axes, scores = expected[row.model]
            index = tuple(labels.index(row.axis(name)) for name, labels in axes.items())
            values = scores[NAMES[ranking.metric.alias]][index]
            assert row.statistics[ranking.metric.alias] == (pytest.approx(values.mean()), pytest.approx(values.std()),
                                                            len(SEEDS))
        assert ranking.rows[-1].model == "factor_vae" and ranking.rows[-1].setting == (("gamma", 100.0),)
        assert np.isnan(ranking.ranks[-1]) and ranking.unranked == 1


def test_every_model_is_a_study_over_its_own_axes_with_settings_in_numeric_order(zoo):
    built, _, _, expected = zoo
    studies = {study.model: study for study in built.content.studies}
    assert set(studies) == set(expected)
    for model, study in studies.items():
        axes = expected[model][0]
        swept = tuple(name for name, labels in axes.items() if len(labels) > 1)
        assert study.axes == swept
        assert study.fixed == tuple((name, labels[0]) for name, labels in axes.items() if len(labels) == 1)
        assert [row.axis(swept[0]) for row in study.rows if len(swept) == 1] == \
            (list(axes[swept[0]]) if len(swept) == 1 else [])
    assert [row.axis("c_max") for row in studies["annealed_vae"].rows] == [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]


def test_figures_for_every_model_and_the_spread_per_model_and_setting(zoo):
    built, out, _, _ = zoo
    drawn = {(figure.kind, figure.path.name) for figures in built.content.study_figures.values() for figure in figures}
    for study in built.content.studies:
        assert ("curves", f"{study.slug}-curves.png") in drawn
        assert (("change", f"{study.slug}-change.png") in drawn) == (len(study.axes) == 2)
    assert sorted(f.path.name for f in built.content.ranking_figures.values()) == sorted(
        f"dsprites-procedural-models-{alias}-distribution.png" for alias in NAMES)
    assert all((out / "figures" / name).is_file() for _, name in drawn)


def test_the_scale_is_on_every_banner_row_caption_and_figure_title(zoo):
    built, out, _, _ = zoo
    readme = (out / "README.md").read_text()
    for study in built.content.studies:
        steps = "2,500 steps (beta_steps 2,000 + training_steps 500), 1.25 % of the protocol's 200,000" \
            if study.model == "lambda_beta_vae" else \
            "3,000 steps, 2 % of the protocol's 150,000" if study.model == "beta_vae" else \
            "3,000 steps, 1 % of the protocol's 300,000"
        assert study.scale.steps_text() == steps
        assert f"| {study.title} | {steps} | 3 seeds | cpu | stand-in (procedural) |" in readme
        assert f"Scale of {study.model}" in readme
        for figure in built.content.study_figures[study.slug]:
            assert study.scale.short() in figure.title
    for figure in built.content.ranking_figures.values():  # each panel names its model's steps and seeds
        assert figure.title.endswith("cpu; stand-in (procedural) data; steps and seeds per model above each panel")
        assert all(f"{study.model}: {study.scale.short()}" in figure.scale for study in built.content.studies)
    assert "[paper.md](paper.md)" in readme


def test_failed_settings_are_last_unranked_and_marked(zoo):
    _, out, _, _ = zoo
    rows = [line for line in (out / "README.md").read_text().splitlines() if "diverged" in line
            and line.startswith("|")]
    assert len(rows) == 4 and all(line.startswith("| - | factor_vae | gamma=100 (1/3 diverged) |") for line in rows)


def test_unverified_records_are_left_out_unless_asked_and_then_marked(zoo, tmp_path):
    _, _, runs, _ = zoo
    record = json.loads(next(runs.glob("annealed_vae-*/record.json")).read_text())
    record.update(schema="dlbench.run/1", run_id="annealed_vae-legacy-0123456789", fit_hash="0123456789")
    del record["digest"]
    record["metrics"]["mig"]["mig"] = np.ones((6, 3)).tolist()  # a perfect MIG nothing vouches for
    (tmp_path / "legacy" / record["run_id"]).mkdir(parents=True)
    (tmp_path / "legacy" / record["run_id"] / "record.json").write_text(json.dumps(record))

    left_out = build_leaderboard([runs, tmp_path / "legacy"], tmp_path / "board")
    assert all(record["run_id"] not in row.run_ids for r in left_out.content.rankings for row in r.rows)
    assert any("no digest" in w and "left out" in w for w in left_out.warnings)
    assert "unverified; left out (--include-unverified uses it" in (tmp_path / "board" / "README.md").read_text()

    used = build_leaderboard([runs, tmp_path / "legacy"], tmp_path / "used", include_unverified=True)
    mig = next(r for r in used.content.rankings if r.metric.alias == "mig")
    marked = [row for row in mig.rows if row.unverified]  # the same experiment: its seeds join the verified ones
    assert len(marked) == 6 and all(row.model == "annealed_vae" and (row.unverified, row.count) == (3, 6)
                                    for row in marked)
    lines = [line for line in (tmp_path / "used" / "README.md").read_text().splitlines()
             if "| annealed_vae |" in line and "(unverified: 3/6)" in line]
    assert len(lines) == 6 * 4
