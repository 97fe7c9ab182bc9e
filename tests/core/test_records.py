import json

import numpy as np
import pytest
import torch

from dlbench import records
from dlbench.errors import RecordError


def minimal_record():
    return {"schema": records.SCHEMA, "run_id": "m-d-seed0-0123456789", "fit_hash": "0123456789", "created": "now",
            "model": {"name": "m", "plugin": "p", "distribution": "d", "version": "1", "hyperparameters": {}},
            "dataset": {"name": "d", "source": "synthetic"}, "seed": 0, "solution_axes": {"start": [0, 1]},
            "replicate_axes": ["start"],
            "metrics": {"exact": {"values": {"sap": torch.tensor([0.5, float("nan")])}}}, "metrics_history": [],
            "timings": {"fit_seconds": 1.0}, "fit": {}, "environment": {}, "config_files": [], "bindings": [],
            "config": "", "operative_config": "", "files": []}


def test_record_round_trip_turns_tensors_into_strict_json(tmp_path):
    records.write_record(tmp_path, minimal_record())
    text = (tmp_path / "record.json").read_text()
    assert "NaN" not in text
    assert records.read_record(tmp_path)["metrics"]["exact"]["values"]["sap"] == [0.5, None]


def test_unknown_schema_is_refused(tmp_path):
    record = minimal_record() | {"schema": "dlbench.run/99"}
    (tmp_path / "record.json").write_text(json.dumps(records.to_jsonable(record)))
    with pytest.raises(RecordError, match="unknown record schema 'dlbench.run/99'"):
        records.read_record(tmp_path)


def test_not_json_and_missing_record_are_refused(tmp_path):
    with pytest.raises(RecordError, match="no record.json"):
        records.read_record(tmp_path)
    (tmp_path / "record.json").write_text("{trunc")
    with pytest.raises(RecordError, match="not valid JSON"):
        records.read_record(tmp_path)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old")

    def broken(stream):
        stream.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        records.atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_state_files_never_unpickle(tmp_path):
    path = tmp_path / "state.npz"
    np.savez(path, weights=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(RecordError, match="unreadable state file"):
        records.load_state(path)
    records.save_state(path, {"w": torch.arange(3.0)})
    assert torch.equal(records.load_state(path)["w"], torch.arange(3.0))


def test_written_files_get_the_usual_permissions_not_mkstemp_s(tmp_path):
    import os

    from dlbench.atomic import FILE_MODE

    records.write_record(tmp_path, minimal_record())
    assert os.stat(tmp_path / "record.json").st_mode & 0o777 == FILE_MODE
    assert FILE_MODE & 0o044  # readable by others under the usual umask 022


def run_with_state(run_dir, weights, **changes) -> None:
    """A finished run: its state file and a record bound to it (or as `changes` make it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    digest = records.save_state(run_dir / records.STATE_FILE, {"weights": weights})
    record = minimal_record() | {"files": [records.STATE_FILE], records.STATE_DIGEST_FIELD: digest} | changes
    records.write_record(run_dir, {k: v for k, v in record.items() if v is not None})


def test_a_run_state_is_given_only_when_it_matches_the_digest_its_record_holds(tmp_path, capsys):
    run_with_state(tmp_path / "a", torch.arange(6.0))
    run_with_state(tmp_path / "b", torch.arange(5.0))
    assert torch.equal(records.load_run_state(tmp_path / "a")["weights"], torch.arange(6.0))
    assert capsys.readouterr().err == ""
    (tmp_path / "a" / records.STATE_FILE).write_bytes((tmp_path / "b" / records.STATE_FILE).read_bytes())
    with pytest.raises(RecordError) as refused:
        records.load_run_state(tmp_path / "a")
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'a' / 'state.npz'} does not match the state digest in "
                              f"{tmp_path / 'a' / 'record.json'}") and "\n" not in message


def test_a_record_of_the_schema_before_state_digests_gives_its_state_unverified(tmp_path, capsys):
    import dlbench

    run_with_state(tmp_path / "old", torch.ones(3), schema="dlbench.run/2", state_digest=None)
    assert torch.equal(dlbench.load_run_state(tmp_path / "old")["weights"], torch.ones(3))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no digest of" in err and "used unverified" in err


@pytest.mark.parametrize("changes, expected", [
    ({"state_digest": None}, "record lacks the field 'state_digest'"),
    ({"state_digest": "sha256:beef"}, "field 'state_digest' = \"sha256:beef\" is not accepted"),
])
def test_a_current_record_listing_a_state_file_must_hold_its_digest(tmp_path, changes, expected):
    with pytest.raises(RecordError, match=expected):
        run_with_state(tmp_path / "run", torch.ones(2), **changes)


def test_the_state_of_a_record_that_lists_none_is_refused(tmp_path):
    run_with_state(tmp_path / "run", torch.ones(2), files=[], state_digest=None)
    with pytest.raises(RecordError, match="the record lists no state.npz"):
        records.load_run_state(tmp_path / "run")
