"""The results store: the SQLite index against the JSON records it indexes, incremental updates, refused
records, --where parsing, grouped statistics and the `dlbench results` command. (What no record can do to the
index, and unverified records: test_trust.py; groups never pooling experiments: test_grouping.py.)"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from dlbench import results
from dlbench.errors import ConfigError
from dlbench.leaderboard.fixtures import deep_record, linear_record, write_run
from dlbench.records import record_digest
from dlbench.results import INDEX_FILE, Condition, Results, open_index, parse_where, where_text
from dlbench.results import index as results_index

BETAS, LAMBDAS, SEEDS = [1.0, 4.0, 16.0], [0.0, 2.0], [0, 1, 2]
SHAPE = (len(BETAS), len(LAMBDAS), len(SEEDS))
GRID = np.arange(np.prod(SHAPE), dtype=float).reshape(SHAPE)


def deep_scores(offset: float) -> dict[str, np.ndarray]:
    mig = 0.01 * GRID + offset
    mig[0, 0, 0] = np.nan  # one unknown score: stored as NULL, left out of means and counts
    return {"mig.mig": mig, "sap_score.sap": 0.02 * GRID ** 1.5 + offset, "i_m.i_m": np.sqrt(GRID) + offset,
            "training.reconstruction": 100 - 3 * GRID + offset}


def linear_exact(num_starts: int) -> dict[str, np.ndarray]:
    shape = (1, len(BETAS), len(LAMBDAS), num_starts)
    values = np.arange(np.prod(shape), dtype=float).reshape(shape)
    return {"sap": values / 100, "i_m": values / 10, "nll": 5 - values, "b_norm": values / 1000,
            "b_norm_ratio": 1 / (1 + values), "no_minimiser": values % 2 == 0}


LEGACY_RECORD = {
    "schema": "dlbench.run/1", "run_id": "linear_gaussian_vae-linear_gaussian-seed7-abcdef0123",
    "model": {"name": "linear_gaussian_vae", "plugin": "linear_gaussian", "distribution": "dlbench-linear-gaussian",
              "version": "0.0.9", "hyperparameters": {"betas": [1.0, 4.0], "num_starts": 2}},
    "dataset": {"name": "linear_gaussian", "source": "synthetic", "n": 12},
    "seed": 7, "solution_axes": {"solver": ["fixed_point"], "beta": [1.0, 4.0], "lambda": [0.0], "start": [0, 1]},
    "metrics": {"exact": {"mode": "exact", "values": {"sap": [[[[0.5, 0.25]], [[None, 0.125]]]]}}},
    "config": "", "operative_config": "",
}


def write_legacy(result_dir: Path, record: dict = LEGACY_RECORD) -> Path:
    run_dir = result_dir / record["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps(record))
    return run_dir


@pytest.fixture
def result_dir(tmp_path) -> Path:
    root = tmp_path / "runs"
    write_run(root, deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, deep_scores(0.0)))
    write_run(root, deep_record("shapes3d", "procedural", BETAS, LAMBDAS, SEEDS, deep_scores(0.5)))
    write_run(root, linear_record(BETAS, LAMBDAS, 4, linear_exact(4)))
    write_legacy(root)
    return root


def recomputed_rows(result_dir: Path) -> dict[tuple, dict]:
    """Brute force from the JSON files: (run id, axis labels) → run fields, axes and every per-solution score."""
    rows = {}
    for path in sorted(result_dir.rglob("record.json")):
        record = json.loads(path.read_text())
        axes = record["solution_axes"]
        shape = tuple(len(labels) for labels in axes.values())
        arrays = {}
        for metric, result in record["metrics"].items():
            for name, value in result.get("values", result).items():
                if isinstance(value, list) and np.array(value, dtype=float).shape == shape:
                    arrays[name if metric == "exact" else f"{metric}.{name}"] = np.array(value, dtype=float)
        for labels in itertools.product(*axes.values()):
            index = tuple(axes[name].index(label) for name, label in zip(axes, labels))
            rows[(record["run_id"], labels)] = {
                "model": record["model"]["name"], "dataset": record["dataset"]["name"],
                "source": record["dataset"]["source"], "plugin_version": record["model"]["version"],
                "fit_hash": record.get("fit_hash", record["run_id"].rsplit("-", 1)[1]),
                "run_dir": path.parent.relative_to(result_dir).as_posix(),
                "axes": dict(zip(axes, labels)), "scores": {name: a[index] for name, a in arrays.items()}}
    return rows


def indexed_rows(result_dir: Path) -> dict[tuple, dict]:
    """What the index file holds, read with plain SQL from its long tables."""
    with sqlite3.connect(result_dir / INDEX_FILE) as connection:
        runs = {record: dict(zip(("run_id", "path", "model", "dataset", "source", "plugin_version", "fit_hash",
                                  "axes"), rest)) for record, *rest in connection.execute(
            "SELECT id, run_id, path, model, dataset, source, plugin_version, fit_hash, axes FROM records "
            "WHERE indexed = 1")}
        labels: dict[tuple, dict] = {}
        for record, solution, axis, value in connection.execute("SELECT record, solution, axis, value FROM labels"):
            labels.setdefault((record, solution), {})[axis] = value
        scores: dict[tuple, dict] = {}
        for record, solution, score, value in connection.execute("SELECT record, solution, score, value FROM scores"):
            scores.setdefault((record, solution), {})[score] = value
        rows = {}
        for record, solution in connection.execute("SELECT record, solution FROM solutions"):
            run = runs[record]
            axes = {name: labels[(record, solution)][name] for name in json.loads(run["axes"])}
            rows[(run["run_id"], tuple(axes.values()))] = {
                **{key: run[key] for key in ("model", "dataset", "source", "plugin_version", "fit_hash")},
                "run_dir": Path(run["path"]).parent.as_posix(), "axes": axes,
                "scores": scores.get((record, solution), {})}
    return rows


def assert_index_matches_records(result_dir: Path) -> None:
    expected, actual = recomputed_rows(result_dir), indexed_rows(result_dir)
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert {k: v for k, v in got.items() if k != "scores"} == {k: v for k, v in want.items() if k != "scores"}
        assert got["scores"].keys() == {name for name, value in want["scores"].items() if not np.isnan(value)}
        for name, value in got["scores"].items():
            assert value == want["scores"][name], (key, name)


def count_reads(monkeypatch) -> list[Path]:
    reads = []
    original = results_index.record_entry
    monkeypatch.setattr(results_index, "record_entry", lambda path, data: reads.append(path) or original(path, data))
    return reads


def rewrite(path: Path, change) -> None:
    """Edit a record in place, keeping its digest valid, and give it a new mtime."""
    record = json.loads(path.read_text())
    change(record)
    record["digest"] = record_digest(record)
    stat = path.stat()
    path.write_text(json.dumps(record, indent=1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_index_equals_records(result_dir):
    connection, warnings = open_index(result_dir)
    connection.close()
    assert warnings == []
    assert_index_matches_records(result_dir)
    assert len(indexed_rows(result_dir)) == 2 * 18 + 24 + 4


def test_incremental_update_reads_only_what_changed(result_dir, monkeypatch):
    reads = count_reads(monkeypatch)
    open_index(result_dir)[0].close()
    assert len(reads) == 4
    reads.clear()
    open_index(result_dir)[0].close()
    assert reads == []  # nothing changed: nothing re-read

    added = write_run(result_dir, deep_record("dsprites", "official", BETAS, LAMBDAS, [3, 4], {
        "mig.mig": np.ones((3, 2, 2))}, seed=1))
    open_index(result_dir)[0].close()
    assert reads == [added / "record.json"]
    assert_index_matches_records(result_dir)

    reads.clear()
    changed = next(p for p in result_dir.rglob("record.json") if "shapes3d" in str(p))
    rewrite(changed, lambda record: record["metrics"]["mig"]["mig"][2][1].__setitem__(0, 12.5))
    open_index(result_dir)[0].close()
    assert reads == [changed]
    assert_index_matches_records(result_dir)
    assert 12.5 in [r["scores"].get("mig.mig") for r in indexed_rows(result_dir).values()]

    reads.clear()
    shutil.rmtree(added)
    open_index(result_dir)[0].close()
    assert reads == []
    assert_index_matches_records(result_dir)
    assert not any(key[0] == added.name for key in indexed_rows(result_dir))


def test_rebuild_reads_everything_and_matches(result_dir, monkeypatch):
    open_index(result_dir)[0].close()
    reads = count_reads(monkeypatch)
    open_index(result_dir, rebuild=True)[0].close()
    assert len(reads) == 4
    assert_index_matches_records(result_dir)


def test_refused_records_are_reported_and_the_rest_indexed(result_dir):
    tampered = next(p for p in result_dir.rglob("record.json") if "shapes3d" in str(p))
    record = json.loads(tampered.read_text())
    record["metrics"]["mig"]["mig"][0][0][1] = 0.99  # a better score, digest left as it was
    tampered.write_text(json.dumps(record))
    schema = write_legacy(result_dir, {**LEGACY_RECORD, "run_id": "future-run-0123456789",
                                       "schema": "dlbench.run/99"}) / "record.json"
    missing = write_legacy(result_dir, {k: v for k, v in LEGACY_RECORD.items() if k != "dataset"}
                           | {"run_id": "legacy-without-dataset-0123456789"}) / "record.json"
    broken = result_dir / "broken" / "record.json"
    broken.parent.mkdir()
    broken.write_text("{not json")

    with Results([result_dir]) as store:
        warnings = store.warnings
        solutions = store.solutions()
    assert len(warnings) == 4 + 1  # and the legacy record without a digest, left out as unverified
    for path, word in ((tampered, "digest"), (schema, "schema"), (missing, "dataset"), (broken, "JSON")):
        line = next(w for w in warnings if str(path) in w)
        assert word in line and "\n" not in line
    assert "dlbench.run/99" in next(w for w in warnings if str(schema) in w)
    assert {s.dataset for s in solutions} == {"dsprites", "linear_gaussian"}
    assert len(solutions) == 18 + 24

    # Warnings come from the index on later calls too, without re-reading the refused files.
    with Results([result_dir]) as store:
        assert sorted(store.warnings) == sorted(warnings)


def fail_reading(monkeypatch, target: Path) -> None:
    original = results_index.record_entry

    def failing(path, data):
        if path == target:
            raise RuntimeError("crash while indexing")
        return original(path, data)

    monkeypatch.setattr(results_index, "record_entry", failing)


def test_a_failed_build_leaves_no_index_and_a_failed_update_leaves_the_old_one(result_dir, monkeypatch):
    fail_reading(monkeypatch, sorted(result_dir.rglob("record.json"))[2])
    with pytest.raises(RuntimeError):
        open_index(result_dir)
    assert [p.name for p in result_dir.iterdir() if p.name.startswith(".")] == []  # no index, no temporary

    monkeypatch.undo()
    open_index(result_dir)[0].close()
    before = indexed_rows(result_dir)
    added = [write_run(result_dir, deep_record("mpi3d", "official", BETAS, LAMBDAS, SEEDS, deep_scores(offset)))
             for offset in (1.0, 2.0)]
    fail_reading(monkeypatch, max(run_dir / "record.json" for run_dir in added))  # the later of the two
    with pytest.raises(RuntimeError):
        open_index(result_dir)
    assert indexed_rows(result_dir) == before  # the first new record's rows were rolled back with the rest


def test_legacy_record_defaults(result_dir):
    with Results([result_dir], include_unverified=True) as store:
        legacy = store.solutions("run_id=linear_gaussian_vae-linear_gaussian-seed7-abcdef0123", ["sap"])
    assert len(legacy) == 4
    np.testing.assert_array_equal([s.scores["sap"] for s in legacy], [0.5, 0.25, np.nan, 0.125])
    assert all(s.replicate_axes == ("start",) and s.fit_hash == "abcdef0123" and not s.verified for s in legacy)
    assert all(s.setting == (("solver", "fixed_point"), ("beta", s.axes["beta"]), ("lambda", 0.0)) for s in legacy)


def test_parse_where():
    assert parse_where("") == []
    assert parse_where("dataset=shapes3d and beta>=8") == [Condition("dataset", "=", "shapes3d"),
                                                           Condition("beta", ">=", 8.0)]
    assert parse_where("source != 'stand in' AND lambda<2.5e0 and solver=\"fixed_point\"") == [
        Condition("source", "!=", "stand in"), Condition("lambda", "<", 2.5), Condition("solver", "=", "fixed_point")]
    assert parse_where("fit_hash=0123abcd") == [Condition("fit_hash", "=", "0123abcd")]
    round_trip = [Condition("model", "=", "beta_tc_vae"), Condition("c_max", ">=", 25.0),
                  Condition("note", "!=", "it's"), Condition("solver", "=", "fixed_point"),
                  Condition("config_hash", "=", "0123456789"), Condition("tag", "=", "1e5"), Condition("x", "=", "and")]
    assert parse_where(where_text(round_trip)) == round_trip


@pytest.mark.parametrize("text", [
    "beta=1; DROP TABLE solutions", "beta=1 or 1=1", "beta=1) --", "(beta=1)", "beta", "beta==1", "beta=1 and",
    "and beta=1", "beta=1 beta=2", "\"beta\"=1", "beta=1 /* */", "beta=1 union select 1",
])
def test_where_rejects_anything_but_clauses(text):
    with pytest.raises(ConfigError) as error:
        parse_where(text)
    assert "is not accepted; expected" in str(error.value) and "\n" not in str(error.value)


def test_where_values_are_parameters_never_sql(result_dir):
    with Results([result_dir]) as store:
        total = len(store.solutions())
        assert store.solutions("dataset=\"x' OR '1'='1\"") == []
        assert store.solutions("dataset='dsprites\" OR 1=1 --'") == []
        assert store.groups("model=\"'); DROP TABLE solutions; --\"", ["dataset"], ["mig"]) == []
        assert len(store.solutions()) == total


def test_unknown_fields_and_metrics_are_refused_with_the_accepted_ones(result_dir):
    with Results([result_dir]) as store:
        with pytest.raises(ConfigError, match="'temperature' is not accepted; expected one of: beta, .*dataset"):
            store.solutions("temperature>3")
        with pytest.raises(ConfigError, match="'colour' is not accepted"):
            store.groups("", ["colour"], ["mig"])
        with pytest.raises(ConfigError, match="metric 'fid' is not accepted; expected one of: mig, sap, i_m"):
            store.solutions("", ["fid"])


def test_where_selects_exactly_the_matching_solutions(result_dir):
    expected = {key for key, row in recomputed_rows(result_dir).items()
                if row["dataset"] == "dsprites" and row["axes"]["beta"] >= 4 and row["axes"]["lambda"] != 2}
    with Results([result_dir]) as store:
        chosen = store.solutions("dataset=dsprites and beta>=4 and lambda!=2")
        assert {(s.run_id, tuple(s.axes.values())) for s in chosen} == expected
        assert len(store.solutions("source=synthetic and solver=fixed_point")) == 24
        assert len(store.solutions("seed=1")) == 2 * 6  # an axis only the deep records have
    with Results([result_dir], include_unverified=True) as store:
        assert len(store.solutions("source=synthetic and solver=fixed_point")) == 24 + 4
        assert store.solutions("plugin_version=0.0.9")[0].run_seed == 7


def test_groups_match_numpy(result_dir):
    with Results([result_dir]) as store:
        groups = store.groups("dataset=dsprites", ["beta", "lambda"], ["mig", "sap", "reconstruction"])
    assert [g.key for g in groups] == [(b, lam) for b in BETAS for lam in LAMBDAS]
    scores = deep_scores(0.0)
    for group in groups:
        cell = (BETAS.index(group.key[0]), LAMBDAS.index(group.key[1]))
        assert group.count == len(SEEDS)
        for alias, name in (("mig", "mig.mig"), ("sap", "sap_score.sap"),
                            ("reconstruction", "training.reconstruction")):
            values = scores[name][cell]
            known = values[~np.isnan(values)]
            mean, std, count = group.statistics[alias]
            assert count == known.size
            assert mean == pytest.approx(np.mean(known), rel=1e-12)
            assert std == pytest.approx(np.std(known), rel=1e-9, abs=1e-15)


def test_groups_over_two_directories_combine_exactly_and_count_a_run_once(result_dir, tmp_path):
    other = tmp_path / "more"
    write_run(other, deep_record("dsprites", "official", BETAS, LAMBDAS, [5, 6], {
        "mig.mig": np.full((3, 2, 2), 0.75) + np.arange(2) / 8}, seed=2))
    duplicate = next(p.parent for p in result_dir.rglob("record.json") if "shapes3d" in str(p))
    shutil.copytree(duplicate, other / duplicate.name)
    with Results([result_dir, other]) as store:
        groups = store.groups("", ["dataset", "source"], ["mig"])
        assert sum("counted once" in w for w in store.warnings) == 1
    by_key = {g.key: g for g in groups}
    first = deep_scores(0.0)["mig.mig"]
    expected = np.concatenate([first[~np.isnan(first)], (np.full((3, 2, 2), 0.75) + np.arange(2) / 8).ravel()])
    mean, std, count = by_key[("dsprites", "official")].statistics["mig"]
    assert (count, mean, std) == (expected.size, pytest.approx(expected.mean()), pytest.approx(expected.std()))
    assert by_key[("shapes3d", "procedural")].count == 18  # the copy is not counted again
    assert np.isnan(by_key[("linear_gaussian", "synthetic")].statistics["mig"][0])


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    results.add_commands(parser.add_subparsers())
    args = parser.parse_args(["results", *argv])
    return args.handler(args)


def test_results_command_formats(result_dir, capsys):
    assert run_command(str(result_dir), "--where", "dataset=dsprites", "--group", "beta", "--metrics",
                       "mig,i_m.i_m", "--format", "csv") == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(row["beta"]) for row in table] == BETAS
    i_m = deep_scores(0.0)["i_m.i_m"]
    for row, values in zip(table, i_m):
        assert float(row["i_m.i_m_mean"]) == pytest.approx(values.mean())
        assert float(row["i_m.i_m_std"]) == pytest.approx(values.std())
        assert int(row["n"]) == int(row["i_m.i_m_n"]) == values.size

    assert run_command(str(result_dir), "--where", "source=synthetic", "--format", "json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert {tuple(entry["group"]) for entry in payload} == {("model", "dataset", "source", "config_hash", "solver",
                                                             "beta", "lambda")}
    assert set(payload[0]["metrics"]) == {"sap", "i_m", "reconstruction"}  # no MIG in these records

    assert run_command(str(result_dir), "--where", "dataset=shapes3d and lambda=0") == 0
    output = capsys.readouterr().out
    assert "±" in output and "shapes3d" in output and "dsprites" not in output


def test_bench_results_quick():
    from dlbench.leaderboard.bench import bench_results

    (row,) = bench_results(quick=True)
    assert set(row) == {"name", "seconds", "baseline_seconds", "ratio", "note"}
    assert row["ratio"] == pytest.approx(row["baseline_seconds"] / row["seconds"])
