"""The solution cache: an entry is reused only when it verifies (its digest and identity); anything else is a miss,
said in one line naming the file, never a crash; a cache directory that cannot work is refused when it is made."""
from __future__ import annotations

import os

import pytest
import torch
from cli_helpers import tiny_deep_gin

from dlbench.errors import ConfigError
from dlbench.training.cache import SolutionCache

IDENTITY = {"beta": 4.0, "seed": 0, "steps": 6, "optimizer": ["adam", 1e-4]}


def solution() -> dict:
    return {"state": {"encoder.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
                      "decoder.bias": torch.ones(2, dtype=torch.bfloat16)},
            "frozen_at": torch.tensor(-1), "history": [{"step": 3, "kl": [0.5, None]}]}


@pytest.fixture
def cache(tmp_path):
    return SolutionCache("stages", tmp_path / "cache")


def stored(cache) -> tuple[str, os.PathLike]:
    key = cache.key(IDENTITY)
    return key, cache.store(key, IDENTITY, solution())


def assert_equal(found, expected) -> None:
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, dict):
            assert_equal(found[name], value)
        elif isinstance(value, torch.Tensor):
            assert found[name].dtype == value.dtype and torch.equal(found[name], value)
        else:
            assert found[name] == value


def test_an_intact_entry_is_reused_silently(cache, capsys):
    key, _ = stored(cache)
    assert_equal(cache.load(key, IDENTITY), solution())
    assert capsys.readouterr().err == ""
    assert cache.load(cache.key({**IDENTITY, "seed": 1}), {**IDENTITY, "seed": 1}) is None  # no entry: a quiet miss
    assert capsys.readouterr().err == ""


def flip_one_bit(path) -> None:
    """Damage that still loads: one bit of one weight, the entry otherwise as it was (digest included)."""
    entry = torch.load(path, weights_only=True)
    weight = entry["solution"]["state"]["encoder.weight"]
    weight.view(torch.int32)[1, 2] ^= 1
    torch.save(entry, path)


def zero_weights(path) -> None:
    entry = torch.load(path, weights_only=True)
    entry["solution"]["state"]["encoder.weight"].zero_()
    torch.save(entry, path)


def another_identity(path) -> None:
    entry = torch.load(path, weights_only=True)
    entry["identity"] = {**IDENTITY, "beta": 8.0}
    torch.save(entry, path)


def older_format(path) -> None:
    entry = torch.load(path, weights_only=True)
    torch.save({"format": "dlbench.solution/1", "identity": entry["identity"], "solution": entry["solution"]}, path)


@pytest.mark.parametrize("damage, reason", [
    (flip_one_bit, "does not match its digest"),
    (zero_weights, "does not match its digest"),
    (lambda path: path.write_bytes(b""), "is unreadable"),
    (lambda path: path.write_bytes(path.read_bytes()[:200]), "is unreadable"),
    (lambda path: path.write_bytes(b"not a torch file"), "is unreadable"),
    (lambda path: torch.save([1, 2], path), "has format 'list'"),
    (another_identity, "was made for another solution"),
    (older_format, "has format 'dlbench.solution/1'"),
])
def test_an_entry_that_does_not_verify_is_a_miss_said_in_one_line(cache, capsys, damage, reason):
    key, path = stored(cache)
    damage(path)
    assert cache.load(key, IDENTITY) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and reason in err and "training it again" in err, err
    # The retrained solution replaces the damaged entry, which is then reused.
    cache.store(key, IDENTITY, solution())
    assert_equal(cache.load(key, IDENTITY), solution())


def test_the_digest_covers_every_value_of_the_solution():
    from dlbench.training.cache import entry_digest

    base = entry_digest(IDENTITY, solution())
    assert entry_digest(IDENTITY, solution()) == base
    changed = solution()
    changed["state"]["decoder.bias"] = changed["state"]["decoder.bias"].float()  # same values, another dtype
    other_shape = solution()
    other_shape["state"]["encoder.weight"] = other_shape["state"]["encoder.weight"].reshape(4, 3)
    other_history = solution()
    other_history["history"][0]["kl"][0] = 0.25
    for variant in (changed, other_shape, other_history):
        assert entry_digest(IDENTITY, variant) != base
    assert entry_digest({**IDENTITY, "steps": 7}, solution()) != base


def test_a_cache_directory_that_cannot_work_is_refused_when_the_cache_is_made(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(tmp_path / "a_file"))
    with pytest.raises(ConfigError, match=r"^\$DLBENCH_CACHE_DIR = '.*a_file' cannot hold the stage cache .*a_file "
                                          r"is a file; expected a writable directory"):
        SolutionCache("stages")
    with pytest.raises(ConfigError, match="a_file is a file"):
        SolutionCache("stages", tmp_path / "a_file" / "under")
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(tmp_path / "new" / "deeper"))
    assert SolutionCache("stages").directory == tmp_path / "new" / "deeper" / "stages"  # created when first stored
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_cache_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    (locked / "stages").mkdir(parents=True)
    locked.chmod(0o500)
    (locked / "stages").chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="stages is not writable"):
            SolutionCache("stages", locked)
        with pytest.raises(ConfigError, match="it cannot be created in"):
            SolutionCache("other", locked)
    finally:
        (locked / "stages").chmod(0o700)
        locked.chmod(0o700)




def test_a_run_retrains_the_beta_stages_whose_cached_entries_have_a_bit_flipped_or_are_empty(tmp_path, monkeypatch,
                                                                                              capsys):
    from dlbench import records
    from dlbench.cli import main

    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "lbvae.gin"
    config.write_text(tiny_deep_gin(betas=[1, 8], steps=2))

    def stages(out: str) -> dict:
        assert main(["run", str(config), "--out", str(tmp_path / out), "--quiet"]) == 0
        (run_dir,) = [p for p in (tmp_path / out).iterdir() if p.is_dir()]
        return records.read_record(run_dir)["fit"]["notes"]["stages"]

    first = stages("first")
    assert len(first["trained"]) == 2 and not first["reused"]
    flipped, emptied = sorted((tmp_path / "cache").rglob("*.pt"))
    flip_one_bit_of_the_first_weight(flipped)
    emptied.write_bytes(b"")
    capsys.readouterr()
    again = stages("again")
    assert len(again["trained"]) == 2 and not again["reused"]
    err = capsys.readouterr().err
    assert f"cached solution {flipped} does not match its digest" in err, err
    assert f"cached solution {emptied} is unreadable" in err and err.count("\n") == 2, err


def flip_one_bit_of_the_first_weight(path) -> None:
    entry = torch.load(path, weights_only=True)
    weight = next(value for name, value in sorted(entry["solution"]["state"].items()) if value.dtype.is_floating_point)
    weight.view(-1).view(torch.int32)[0] ^= 1
    torch.save(entry, path)
