"""What a record can and cannot do to the results store (issue 17's results-index cases): a record without a
digest is never used silently; no field of a record (an axis named like a run field, thousands of scores,
infinities) breaks or steers the index for the others; the index takes the records' permissions, is rebuilt when
it cannot be opened, and is not trusted merely because a record's size and mtime are unchanged. Each case through
the command line: one line per problem, the other records' numbers intact, the records unchanged."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_failure, checksums

from dlbench.cli import main
from dlbench.leaderboard.fixtures import deep_record, write_run
from dlbench.records import record_digest
from dlbench.results import INDEX_FILE, Results
from dlbench.results import index as results_index

BETAS, LAMBDAS, SEEDS = [1.0, 16.0], [0.0], [0, 1]
SAP = np.array([[[1e-13, 3e-13]], [[2e-13, 4e-13]]])


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    write_run(root, deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, {"sap_score.sap": SAP}))
    return root


def results_command(capsys, *argv: str) -> tuple[int, str, list[str]]:
    code = main(["results", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def records_of(sums: dict[str, str]) -> dict[str, str]:
    return {name: digest for name, digest in sums.items() if INDEX_FILE not in name}


def legacy_copy(runs: Path, change, run_id: str = "legacy-run-0123456789") -> Path:
    """A copy of the fixture's record as a legacy record (schema dlbench.run/1, no digest), changed by `change`."""
    record = json.loads(next(runs.rglob("record.json")).read_text())
    record.update(schema="dlbench.run/1", run_id=run_id, fit_hash="0123456789")
    del record["digest"]
    change(record)
    path = runs / run_id / "record.json"
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    return path


def test_a_record_without_a_digest_is_left_out_named_and_used_only_when_asked(runs, capsys):
    # The fault trial's case: schema set to dlbench.run/1, digest deleted, a score edited.
    forged = legacy_copy(runs, lambda r: r["metrics"]["sap_score"].update(sap=[[[0.999, 0.999]], [[0.999, 0.999]]]))
    before = checksums(runs)
    code, out, err = results_command(capsys, runs, "--metrics", "sap", "--format", "csv")
    assert code == 0
    assert [line for line in err if "unverified" in line] == [
        f"warning: {forged}: no digest, so nothing vouches for its contents: unverified; left out "
        "(--include-unverified uses it, marked unverified)"]
    rows = out.strip().splitlines()[1:]
    assert len(rows) == 2 and all(",2,0,0," in row and "0.999" not in row for row in rows)  # n=2, none unverified

    code, out, err = results_command(capsys, runs, "--metrics", "sap", "--include-unverified")
    assert code == 0 and any("used, because --include-unverified was given" in line for line in err)
    assert "1 unverified record(s) (no digest) included and counted under 'unverified'" in out
    header, _, *table = out.splitlines()[1:]
    assert header.split()[:9] == ["model", "dataset", "source", "config_hash", "beta", "lambda", "n",
                                  "unverified", "sap"]
    assert all(line.split()[6:8] == ["4", "2"] for line in table)  # 4 solutions, 2 of them unverified
    assert records_of(checksums(runs)) == records_of(before)


@pytest.mark.parametrize("legacy", [True, False])
def test_an_axis_named_like_a_run_field_is_refused_and_steers_nothing(runs, capsys, legacy):
    if legacy:
        path = legacy_copy(runs, lambda r: r.update(solution_axes={"model": ["hijack"], **r["solution_axes"]}))
    else:  # a current record with a valid digest
        record = json.loads(next(runs.rglob("record.json")).read_text())
        record.update(run_id="axis-model-0123456789", fit_hash="0123456789",
                      solution_axes={"model": ["hijack"], **record["solution_axes"]})
        path = write_run(runs, {k: v for k, v in record.items() if k != "digest"}) / "record.json"
    before = checksums(runs)
    code, out, err = results_command(capsys, runs, "--metrics", "sap", "--format", "csv")
    assert code == 0 and records_of(checksums(runs)) == records_of(before)
    assert [line for line in err if str(path) in line] == [
        f"warning: {path}: axis name 'model' is not accepted; expected letters, digits and '_', and none of the "
        "run fields and output columns (config_hash, dataset, failed, fit_hash, model, n, plugin, "
        "plugin_distribution, plugin_version, run_dir, run_id, run_seed, runs, source, unverified)"]
    assert {row.split(",")[0] for row in out.strip().splitlines()[1:]} == {"lambda_beta_vae"}


def test_thousands_of_scores_in_one_record_leave_the_others_alone(runs, capsys):
    many = {f"wide.score{i}": np.full((2, 1, 2), float(i)) for i in range(2100)}
    write_run(runs, deep_record("shapes3d", "official", BETAS, LAMBDAS, SEEDS, {"sap_score.sap": SAP, **many}))
    before = checksums(runs)
    code, out, err = results_command(capsys, runs, "--metrics", "sap,wide.score2099", "--format", "csv")
    assert code == 0 and err == []
    rows = [row.split(",") for row in out.strip().splitlines()[1:]]
    assert [(row[1], row[-3]) for row in rows] == [("dsprites", ""), ("dsprites", ""), ("shapes3d", "2099.0"),
                                                   ("shapes3d", "2099.0")]
    assert records_of(checksums(runs)) == records_of(before)


@pytest.mark.parametrize("value", ["1e999", "-1e999", "1" + "0" * 400])
def test_an_infinite_value_refuses_its_record_alone(runs, capsys, value):
    path = legacy_copy(runs, lambda r: None)
    path.write_text(path.read_text().replace("1e-13", value, 1))
    before = checksums(runs)
    code, out, err = results_command(capsys, runs, "--metrics", "sap", "--include-unverified", "--format", "csv")
    assert code == 0 and records_of(checksums(runs)) == records_of(before)
    line = next(line for line in err if str(path) in line)
    assert "is not accepted" in line and ("out of range" in line or "finite" in line), line
    assert len(out.strip().splitlines()) == 1 + 2 and "inf" not in out


@pytest.mark.parametrize("command", ["results", "leaderboard"])
def test_a_signed_record_with_a_number_beyond_a_float_is_named_and_left_out(runs, tmp_path, capsys, command):
    # Its digest matches (an integer that large has one), so only the parser stands between it and the scores.
    record = deep_record("shapes3d", "official", BETAS, LAMBDAS, SEEDS, {"sap_score.sap": SAP})
    record["metrics"]["sap_score"]["sap"][0][0][0] = 10 ** 400
    path = write_run(runs, record) / "record.json"
    before = checksums(runs)
    argv = ["--metrics", "sap", "--format", "csv"] if command == "results" else ["--out", tmp_path / "board"]
    code = main([command, str(runs), *map(str, argv)])
    err = capsys.readouterr().err.splitlines()
    assert code == 0 and records_of(checksums(runs)) == records_of(before)
    assert [line for line in err if str(path) in line] == [
        f"warning: {path}: the contents (the number 10000000000000000000… is out of range of a float) is not "
        "accepted; expected a JSON run record"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_the_index_takes_the_permissions_of_the_records(runs, mode):
    for path in runs.rglob("record.json"):
        os.chmod(path, mode)
    Results([runs]).close()
    assert (runs / INDEX_FILE).stat().st_mode & 0o777 == mode
    os.chmod(next(runs.rglob("record.json")), 0o644 & mode)
    Results([runs]).close()  # reused, and brought in line with records that changed mode
    assert (runs / INDEX_FILE).stat().st_mode & 0o777 == 0o644 & mode


def sap_means(out: str) -> list[float]:
    return [float(row.split(",")[-3]) for row in out.strip().splitlines()[1:]]


@pytest.mark.parametrize("damage", ["garbage", "empty", "directory"])
def test_an_index_that_cannot_be_opened_is_rebuilt(runs, capsys, damage):
    index = runs / INDEX_FILE
    if damage == "directory":
        index.mkdir()
    else:
        index.write_bytes(b"" if damage == "empty" else b"not a database" * 100)
    before = checksums(runs)
    code, out, err = results_command(capsys, runs, "--metrics", "sap", "--format", "csv")
    assert code == 0 and "Traceback" not in "".join(err)
    assert sap_means(out) == pytest.approx([SAP[0].mean(), SAP[1].mean()], rel=1e-12)
    reason = {"garbage": "file is not a database", "empty": "no such table: meta",
              "directory": "unable to open database file"}[damage]
    assert err[0] == f"warning: {index}: cannot be used ({reason}); rebuilt from the records"
    if damage == "directory":  # nothing can replace it: indexed in memory
        assert err[1:] == [f"warning: {runs}: no index written (Is a directory); indexed its records in memory "
                           "for this command only"] and index.is_dir()
    else:
        assert len(err) == 1
        assert sqlite3.connect(index).execute("SELECT COUNT(*) FROM solutions").fetchone() == (4,)
    assert records_of(checksums(runs)) == records_of(before)


def test_an_index_another_user_cannot_open_is_rebuilt_in_memory(runs, capsys, monkeypatch):
    # The fault trial's case: an index of mode 0600 read by another user. Tests run as root, whom no mode stops,
    # so SQLite's own answer to that user is given here.
    Results([runs]).close()
    original = results_index._connect

    def refused(path):
        if Path(path).name.startswith(INDEX_FILE) or Path(path).name.startswith(f".{INDEX_FILE}"):
            raise sqlite3.OperationalError("unable to open database file")
        return original(path)

    monkeypatch.setattr(results_index, "_connect", refused)
    before = checksums(runs)
    code, out, err = results_command(capsys, runs, "--metrics", "sap", "--format", "csv")
    assert code == 0 and "Traceback" not in "".join(err)
    assert err == [f"warning: {runs / INDEX_FILE}: cannot be used (unable to open database file); rebuilt from the "
                   "records",
                   f"warning: {runs}: no index written (unable to open database file); indexed its records in "
                   "memory for this command only"]
    assert sap_means(out) == pytest.approx([SAP[0].mean(), SAP[1].mean()], rel=1e-12)
    assert checksums(runs) == before


def test_the_index_is_not_trusted_because_size_and_mtime_are_unchanged(runs, capsys):
    results_command(capsys, runs, "--metrics", "sap")
    path = next(runs.rglob("record.json"))
    stat = path.stat()
    record = json.loads(path.read_text())
    record["metrics"]["sap_score"]["sap"][0][0][0] = 9e-13  # the same length as the 1e-13 it replaces
    record["digest"] = record_digest(record)
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    assert len(text.encode()) == stat.st_size
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    code, out, _ = results_command(capsys, runs, "--metrics", "sap", "--format", "csv")
    assert code == 0 and sap_means(out)[0] == pytest.approx(np.mean([9e-13, 3e-13]), rel=1e-12)


def test_pooling_a_field_that_is_not_an_experiment_field_is_refused(runs, capsys):
    assert_one_line_failure(["results", runs, "--pool", "beta"], runs, capsys,
                            "--pool field 'beta' is not accepted; expected some of: model, dataset, source, "
                            "config_hash")
