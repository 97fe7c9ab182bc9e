"""`dlbench results` never pools two experiments: whatever --group asks, model, dataset, source and config stay
group fields unless --pool names them, and the table says so. Records of the zoo's models, each with its own axes,
against brute force over the arrays they were written from."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dlbench.cli import main
from dlbench.leaderboard.fixtures import deep_record, write_run, zoo_record

SEEDS = [0, 1, 2]
BETAS, LAMBDAS, GAMMAS = [1.0, 4.0], [0.0, 2.0], [10.0, 20.0, 40.0]


def mig(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).random(shape)


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    expected = {}
    for number, dataset in enumerate(("dsprites", "shapes3d")):
        for model, axes in (("lambda_beta_vae", {"beta": BETAS, "lambda": LAMBDAS}), ("beta_tc_vae", {"beta": BETAS}),
                            ("factor_vae", {"gamma": GAMMAS})):
            shape = (*map(len, axes.values()), len(SEEDS))
            values = mig(10 * number + len(model), shape)
            if model == "lambda_beta_vae":
                record = deep_record(dataset, "official", BETAS, LAMBDAS, SEEDS, {"mig.mig": values})
            else:
                record = zoo_record(model, dataset, "official", axes, SEEDS, {"mig.mig": values})
            write_run(root, record)
            expected[(model, dataset)] = (axes, values)
    return root, expected


def results_json(capsys, *argv: str) -> list[dict]:
    assert main(["results", *map(str, argv), "--metrics", "mig", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_grouping_by_an_axis_keeps_models_and_datasets_apart(runs, capsys):
    root, expected = runs
    groups = results_json(capsys, root, "--group", "beta")
    assert {tuple(g["group"]) for g in groups} == {("model", "dataset", "source", "config_hash", "beta")}
    seen = set()
    for group in groups:
        key = group["group"]
        axes, values = expected[(key["model"], key["dataset"])]
        if "beta" in axes:  # brute force: that model's solutions at that β, over every other axis and seed
            cell = values[axes["beta"].index(key["beta"])]
        else:
            assert key["beta"] is None
            cell = values
        assert group["n"] == cell.size and len(group["runs"]) == 1
        assert group["metrics"]["mig"]["mean"] == pytest.approx(cell.mean())
        assert group["metrics"]["mig"]["std"] == pytest.approx(cell.std())
        seen.add((key["model"], key["dataset"], key["beta"]))
    assert len(seen) == len(groups) == 2 * (2 + 2 + 1)


def test_default_groups_are_each_models_own_settings(runs, capsys):
    root, expected = runs
    groups = results_json(capsys, root)
    # The setting axes of every model, in the order the records (sorted by path) first show them.
    assert {tuple(g["group"]) for g in groups} == {("model", "dataset", "source", "config_hash", "beta", "gamma",
                                                    "lambda")}
    assert all(g["n"] == len(SEEDS) for g in groups)
    factor = [g for g in groups if g["group"]["model"] == "factor_vae" and g["group"]["dataset"] == "shapes3d"]
    values = expected[("factor_vae", "shapes3d")][1]
    assert [g["group"]["gamma"] for g in factor] == GAMMAS
    assert [g["metrics"]["mig"]["mean"] for g in factor] == pytest.approx(values.mean(axis=1))


def test_pooling_happens_only_when_asked_and_says_so(runs, capsys):
    root, expected = runs
    assert main(["results", str(root), "--group", "dataset", "--metrics", "mig"]) == 0
    note, header, _, *rows = capsys.readouterr().out.splitlines()
    assert "model, dataset, source and config are always kept apart unless --pool names them" in note
    assert len(rows) == 2 * 3 and header.split()[:4] == ["model", "dataset", "source", "config_hash"]

    groups = results_json(capsys, root, "--group", "dataset", "--pool", "model,config_hash")
    assert [g["group"] for g in groups] == [{"dataset": "dsprites", "source": "official"},
                                            {"dataset": "shapes3d", "source": "official"}]
    pooled = np.concatenate([values.ravel() for (model, dataset), (_, values) in expected.items()
                             if dataset == "shapes3d"])
    assert groups[1]["n"] == pooled.size and groups[1]["metrics"]["mig"]["mean"] == pytest.approx(pooled.mean())
    assert main(["results", str(root), "--group", "dataset", "--pool", "model,config_hash"]) == 0
    assert "pooled over model, config_hash (--pool)" in capsys.readouterr().out.splitlines()[0]
