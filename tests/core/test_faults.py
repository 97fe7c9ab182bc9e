"""The project's own fault suite: bad input of every kind, driven through the CLI in-process.

Every case must end with exit status 2, exactly one line on stderr that starts "dlbench: error:", no
traceback, and every file that existed before byte-identical afterwards (finished records and state
files included). Spaces of inputs are generated with hypothesis where one fits.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_failure, tiny_deep_gin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbench import records
from dlbench.cli import main
from dlbench.datasets import dsprites, fixtures

TINY = """
dataset.name = "linear_gaussian"
linear_gaussian.n = 8
linear_gaussian.s = 2
model.name = "linear_gaussian_vae"
linear_gaussian_vae.num_latent = 3
linear_gaussian_vae.betas = [1, 4]
linear_gaussian_vae.lambdas = [0, 2]
linear_gaussian_vae.num_starts = 2
linear_gaussian_vae.max_half_steps = 300
evaluation.metrics = ["mig"]
mig.protocol = "dlib"
mig.num_train = 200
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run, copied afresh into every case that damages it."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.gin").write_text(TINY)
    assert main(["run", str(root / "tiny.gin"), "--out", str(root / "runs"), "--quiet"]) == 0
    (run_dir,) = [p for p in (root / "runs").iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture
def world(tmp_path, finished):
    """A directory tree of things a user has: a config, a finished run, a fixture data file, a plain file."""
    (tmp_path / "tiny.gin").write_text(TINY)
    shutil.copytree(finished, tmp_path / "runs" / finished.name)
    fixtures.write_dsprites_npz(tmp_path / dsprites.NPZ_NAME, (1, 3, 1, 2, 2, 2))
    (tmp_path / "a_file").write_text("not a directory")
    return tmp_path


def run_dir_in(root: Path) -> Path:
    (run_dir,) = [p for p in (root / "runs").iterdir() if p.is_dir()]
    return run_dir


# Paths ------------------------------------------------------------------------------------------------------

PATH_CASES = [
    (lambda w: ["run", w / "tiny.gin", "--out", w / "a_file"], "is a file; expected a directory"),
    (lambda w: ["run", w / "tiny.gin", "--out", w / "a_file" / "under"], "a parent of it is a file"),
    (lambda w: ["run", w / "tiny.gin", "--out", ""], "--out '' is not accepted"),
    (lambda w: ["run", w / "missing.gin"], "not found; give the path of a .gin file"),
    (lambda w: ["run", w / "runs"], "not found; give the path of a .gin file"),
    (lambda w: ["run", w / dsprites.NPZ_NAME], "not a text file"),
    (lambda w: ["evaluate", w / "no_such_run"], "no record.json"),
    (lambda w: ["evaluate", w / "a_file"], "no record.json"),
    (lambda w: ["plot", w / "no_such_run"], "no record.json"),
    (lambda w: ["plot", run_dir_in(w), "--out", w / "a_file"], "is a file; expected a directory"),
    (lambda w: ["data", "preview", "dsprites", "--source", "procedural", "--out", w / "sheet"],
     "expected an image file name ending in"),
    (lambda w: ["data", "preview", "dsprites", "--source", "procedural", "--out", w / "sheet.exe"],
     "expected an image file name ending in"),
    (lambda w: ["data", "preview", "dsprites", "--source", "procedural", "--out", w / "runs"], "is not accepted"),
    (lambda w: ["data", "preview", "dsprites", "--source", "procedural", "--out", w / "a_file" / "x.png"],
     "a part of that path is a file"),
    (lambda w: ["data", "list", "--data-dir", w / "no_such_dir"], "is not an existing directory"),
    (lambda w: ["data", "list", "--data-dir", w / "a_file"], "is not an existing directory"),
    (lambda w: ["data", "info", "dsprites", "--source", "official", "--path", w / "nothing.npz"], "no such file"),
    (lambda w: ["data", "verify", "dsprites", "--data-dir", w / "runs"], "none of"),
    (lambda w: ["run", w / "tiny.gin", "--out", run_dir_in(w)], "is a run directory; expected a directory of run "
                                                                 "directories, such as"),
    (lambda w: ["run", w / "tiny.gin", "--out", run_dir_in(w) / "more"], "is inside the run directory"),
    (lambda w: ["sweep", w / "tiny.gin", "--out", run_dir_in(w), "--quiet"], "is a run directory"),
    (lambda w: ["sweep", w / "tiny.gin", "--out", w / "a_file", "--quiet"], "is a file; expected a directory"),
    (lambda w: ["plot", run_dir_in(w), "--out", w / "runs"], "is a results directory (it holds run directories)"),
    (lambda w: ["plot", run_dir_in(w), "--out", run_dir_in(w)], "is a run directory (it holds record.json)"),
]


@pytest.mark.parametrize("argv, expected", PATH_CASES, ids=[f"path{i}" for i in range(len(PATH_CASES))])
def test_bad_paths(world, capsys, argv, expected):
    assert_one_line_failure(argv(world), world, capsys, expected)


# Output directories of the leaderboard and the report --------------------------------------------------------

def project_root(w: Path) -> Path:
    """A directory of someone's project: its README.md is not the leaderboard's."""
    (w / "project").mkdir()
    (w / "project" / "README.md").write_text("# my project\n")
    return w / "project"


def board_with_foreign(w: Path, name: str, content: str) -> Path:
    """A leaderboard directory (its README.md the leaderboard's own) that also holds another's `name`."""
    board = w / "board"
    board.mkdir()
    (board / "README.md").write_text("# dlbench leaderboard\n\nBuilt from 1 run records.\n")
    (board / name).write_text(content)
    return board


def users_figures(w: Path) -> Path:
    (w / "mine" / "figures").mkdir(parents=True)
    (w / "mine" / "figures" / "plot.png").write_bytes(b"\x89PNG someone's figure")
    return w / "mine"


NOT_WRITTEN_BY_DLBENCH = "which dlbench did not write; expected a missing or empty directory, or one that "
OUT_DIR_CASES = [
    (lambda w: w / "a_file", "is a file; expected a missing or empty directory, or one that "),
    (project_root, "holds README.md, " + NOT_WRITTEN_BY_DLBENCH),
    (lambda w: board_with_foreign(w, "index.html", "<!DOCTYPE html>\n<title>my page</title>\n"),
     "holds index.html, " + NOT_WRITTEN_BY_DLBENCH),
    (lambda w: board_with_foreign(w, "paper.md", "# my paper\n"), "holds paper.md, " + NOT_WRITTEN_BY_DLBENCH),
    (lambda w: board_with_foreign(w, "records", "a file where the record copies go"),
     "holds records, " + NOT_WRITTEN_BY_DLBENCH),
    (lambda w: w / "runs", "holds files dlbench did not write and no page of a leaderboard"),
    (users_figures, "holds files dlbench did not write and no page of a leaderboard"),
]


@pytest.mark.parametrize("command", [["leaderboard"], ["report", "paper"]], ids=["leaderboard", "report"])
@pytest.mark.parametrize("out, expected", OUT_DIR_CASES, ids=[f"out{i}" for i in range(len(OUT_DIR_CASES))])
def test_the_leaderboard_and_the_report_write_only_over_their_own_files(world, capsys, command, out, expected):
    assert_one_line_failure([*command, world / "runs", "--out", out(world)], world, capsys, expected)


def fill_the_disk_while_writing(monkeypatch, file_name: str, capacity: int = 100) -> None:
    """Writes of `file_name` through the atomic writer fail as on a full disk once `capacity` bytes are written."""
    import errno
    import io

    from dlbench import atomic

    class FullDisk(io.RawIOBase):
        def __init__(self, stream):
            self.stream, self.written = stream, 0

        def writable(self):
            return True

        def write(self, data):
            if self.written + len(data) > capacity:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(data)
            return self.stream.write(data)

        def close(self):
            self.stream.close()
            super().close()

    def opening(file, mode="r", *args, **kwargs):
        stream = open(file, mode, *args, **kwargs)
        if mode == "wb" and Path(file).name.startswith(f".{file_name}."):  # the temporary beside the file
            return io.BufferedWriter(FullDisk(stream))
        return stream

    monkeypatch.setattr(atomic, "open", opening, raising=False)


# The fit's checkpoint (torch.save, whose writer turns the OSError into "unexpected pos"), the state, the record.
@pytest.mark.parametrize("file_name", ["solver_fixed_point.pt", records.STATE_FILE, records.RECORD_FILE])
def test_a_full_disk_names_the_file_and_its_file_system_and_leaves_nothing_half_written(world, capsys, monkeypatch,
                                                                                        file_name):
    fill_the_disk_while_writing(monkeypatch, file_name)
    err = assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "other_runs", "--quiet"], world,
                                  capsys, "No space left on device (the file system at ")
    assert f"{file_name}: No space left" in err and "free some space there or choose another location" in err
    assert not list((world / "other_runs").rglob(records.RECORD_FILE))
    assert not list((world / "other_runs").rglob("*.tmp"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only directories")
def test_an_unwritable_out_directory(world, capsys):
    locked = world / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_one_line_failure(["run", world / "tiny.gin", "--out", locked], world, capsys, "is not writable")
    finally:
        locked.chmod(0o700)


# Numbers ----------------------------------------------------------------------------------------------------

NUMBER_CASES = [
    ("linear_gaussian_vae.betas = [1e999]", "linear_gaussian_vae.betas"),
    ("linear_gaussian_vae.betas = [4, -1e999]", "linear_gaussian_vae.betas"),
    ("linear_gaussian_vae.lambdas = [1e999]", "linear_gaussian_vae.lambdas"),
    ("linear_gaussian.noise_var = 1e999", "linear_gaussian.noise_var = inf is not accepted"),
    ("linear_gaussian.noise_var = 0", "linear_gaussian.noise_var = 0 is not accepted"),
    ("linear_gaussian_vae.num_starts = 1000000000", "would fit"),
    ("linear_gaussian.n = 10000000", "linear_gaussian.n = 10,000,000 needs about"),
    ("model.random_seed = 100000000000000000000", "model.random_seed = 100000000000000000000 is not accepted"),
    ("model.random_seed = -3", "model.random_seed = -3 is not accepted"),
    ("evaluation.random_seed = 1.5", "evaluation.random_seed = 1.5 is not accepted"),
    ("linear_gaussian.seed = 99999999999999999999", "linear_gaussian.seed"),
    ("mig.random_seed = -1", "mig.random_seed = -1 is not accepted"),
    ("mig.num_train = 1000000000000", "mig with 1,000,000,000,000 samples needs about"),
    ("mig.num_bins = 1", "mig.num_bins = 1 is not accepted"),
    ("linear_gaussian_vae.learning_rate = 1e999", "linear_gaussian_vae.learning_rate = inf is not accepted"),
    ("linear_gaussian_vae.tol = -1e-5", "linear_gaussian_vae.tol"),
    ("linear_gaussian_vae.max_half_steps = 0", "linear_gaussian_vae.max_half_steps = 0 is not accepted"),
    ("linear_gaussian_vae.num_latent = 1e999", "linear_gaussian_vae.num_latent = inf is not accepted"),
]


@pytest.mark.parametrize("binding, expected", NUMBER_CASES, ids=[c[0].split("=")[0].strip() + str(i)
                                                                 for i, c in enumerate(NUMBER_CASES)])
def test_bad_numbers_are_refused_before_any_work(world, capsys, binding, expected):
    assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "runs", "--quiet", "-p", binding], world,
                            capsys, expected)
    assert not list((world / "runs").glob("*.partial"))


@pytest.mark.parametrize("argv, expected", [
    (["--seed", "-1"], "--seed = -1 is not accepted"),
    (["--seed", str(2**64)], "is not accepted; expected an integer >= 0"),
    (["--seed", "x"], "invalid int value"),
    (["--device", "tpu"], "--device 'tpu' is not accepted"),
    (["--columns", "no_such_score"], "--columns 'no_such_score' is not accepted; expected scores of this run"),
])
def test_bad_run_options(world, capsys, argv, expected):
    assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "runs", "--quiet", *argv], world, capsys,
                            expected)


@pytest.mark.parametrize("argv, expected", [
    (["--seed", "-1"], "--seed = -1 is not accepted"),
    (["--seed", str(2**70)], "is not accepted"),
    (["--metrics", "no_such_metric"], "unknown metric 'no_such_metric'"),
    (["--columns", "nope"], "--columns 'nope' is not accepted"),
    (["-p", "linear_gaussian_vae.num_starts = 9"], "would change the trained model"),
    (["-p", "dataset.name = 'dsprites'"], "would change the trained model"),
    (["-p", "mig.num_bins = 0"], "mig.num_bins = 0 is not accepted"),
    (["-p", "import os"], "import statement"),
    (["-p", "nope.x = 1"], "'nope' is not a configurable (see 'dlbench list configurables')"),
    (["--device", "cuda:99" if not torch.cuda.is_available() else "cuda:99"], "cuda"),
])
def test_bad_evaluate_options(world, capsys, argv, expected):
    assert_one_line_failure(["evaluate", run_dir_in(world), *argv], world, capsys, expected)


finite_bad = st.one_of(st.floats(max_value=0.0, allow_nan=False), st.just(float("inf")),
                       st.floats(min_value=1e309, allow_infinity=True, allow_nan=False))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(beta=finite_bad, good=st.floats(min_value=0.1, max_value=64))
def test_generated_bad_betas(world, capsys, beta, good):
    text = f"[{good!r}, {beta!r}]".replace("inf", "1e999")
    assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "runs", "--quiet",
                             "-p", f"linear_gaussian_vae.betas = {text}"], world, capsys, "linear_gaussian_vae.betas")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)))
def test_generated_bad_seeds(world, capsys, seed):
    assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "runs", "--quiet", "--seed", str(seed)],
                            world, capsys, "is not accepted")


# Gin text ---------------------------------------------------------------------------------------------------

GIN_CASES = [
    ('include "nowhere.gin"\n', "Unable to open file: nowhere.gin"),
    ("dataset.name = %UNDEFINED\nmodel.name = 'linear_gaussian_vae'\n", "%UNDEFINED"),
    ("import a_module_that_does_not_exist\n", "No module named 'a_module_that_does_not_exist'"),
    ("dataset.name = 'linear_gaussian'\nmodel.name = [\n", "line 3: EOF in multi-line statement"),
    ("not_a_configurable.value = 3\n", "No configurable matching 'not_a_configurable'"),
    ("model.no_such_param = 3\n", "doesn't have a parameter named 'no_such_param'"),
    ("dataset.name = 'linear_gaussian'\n", "model.name must be set"),
    ("model.name = 'linear_gaussian_vae'\n", "dataset.name must be set"),
    ("dataset.name = 3\nmodel.name = 'linear_gaussian_vae'\n", "dataset.name = 3 is not accepted"),
    ("dataset.name = 'linear_gaussian'\nmodel.name = 'linear_gaussian_vae'\nevaluation.metrics = ['mig', 'mig']\n",
     "each metric named once"),
    ("dataset.name = 'linear_gaussian'\nmodel.name = 'linear_gaussian_vae'\ndataset.source = 'official'\n",
     "dataset.source = 'official' is not accepted"),
    ("dataset.name = 'dsprites'\nmodel.name = 'linear_gaussian_vae'\ndataset.source = 'procedural'\n"
     "linear_gaussian_vae.num_starts = 1\n", "needs dataset.name = 'linear_gaussian'"),
    ("\x00\x01binary", None),
]


@pytest.mark.parametrize("text, expected", GIN_CASES, ids=[f"gin{i}" for i in range(len(GIN_CASES))])
def test_bad_gin_text(world, capsys, text, expected):
    path = world / "bad.gin"
    path.write_text(text)
    assert_one_line_failure(["run", path, "--out", world / "runs", "--quiet"], world, capsys, expected)


gin_alphabet = st.sampled_from(list("abcdemnorst_.=[](){}'\"@%/:,0123456789 \n#-"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(gin_alphabet, max_size=60))
def test_generated_gin_text_never_crashes(world, capsys, text):
    path = world / "generated.gin"
    path.write_text(text)
    assert_one_line_failure(["run", path, "--out", world / "runs", "--quiet"], world, capsys)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(binding=st.text(gin_alphabet, min_size=1, max_size=40))
def test_generated_bindings_never_crash(world, capsys, binding):
    # A binding that happens to be valid still cannot make this run legal: its model is unknown.
    assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "runs", "--quiet", "-p", binding,
                             "-p", "model.name = 'no_such_model'"], world, capsys)


# Damaged records and state files ----------------------------------------------------------------------------


def edit_record(run_dir: Path, change) -> None:
    """Edit record.json as a person would (the digest is left as it was)."""
    path = run_dir / records.RECORD_FILE
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def resign(record: dict) -> None:
    """An edit made to look legitimate: the digest recomputed after the change."""
    record[records.DIGEST_FIELD] = records.record_digest(record)


def swap_state_axes(run_dir: Path) -> None:
    state = dict(np.load(run_dir / records.STATE_FILE))
    state["B"] = np.ascontiguousarray(np.swapaxes(state["B"], -1, -2))
    np.savez(run_dir / records.STATE_FILE, **state)


def import_in_config(record: dict) -> None:
    record["config"] = "import dlbench_fault_canary\n" + record["config"]
    resign(record)


def another_runs_state(run_dir: Path) -> None:
    """A valid state file of another run (fewer latents), put in this run's place."""
    state = dict(np.load(run_dir / records.STATE_FILE))
    records.save_state(run_dir / records.STATE_FILE, {"B": torch.from_numpy(state["B"][..., :-1, :])})


def number_in_record(run_dir: Path, literal: str) -> None:
    """A score written as a JSON number dlbench never writes (it writes null where a value is not finite), in place
    of the one the digest was computed over."""
    edit_record(run_dir, lambda r: (r["metrics"]["mig"].update(mig=-1), resign(r)))
    path = run_dir / records.RECORD_FILE
    path.write_text(path.read_text().replace('"mig": -1', f'"mig": {literal}', 1))


NOT_ITS_STATE = "state.npz does not match the state digest in "
STATE_DAMAGE = [
    (lambda d: (d / records.STATE_FILE).write_bytes(b""), NOT_ITS_STATE),
    (lambda d: (d / records.STATE_FILE).write_bytes(b"PK\x03\x04 truncated"), NOT_ITS_STATE),
    (lambda d: (d / records.STATE_FILE).unlink(), "state.npz"),
    (swap_state_axes, NOT_ITS_STATE),
    (lambda d: np.savez(d / records.STATE_FILE, B=np.array([{"x": 1}], dtype=object)), NOT_ITS_STATE),
    (another_runs_state, NOT_ITS_STATE),
]
RECORD_DAMAGE = [
    (lambda d: (d / records.RECORD_FILE).write_text("{trunc"), "not valid JSON"),
    (lambda d: (d / records.RECORD_FILE).write_bytes(b"\xff\xfe"), "not valid JSON"),
    (lambda d: edit_record(d, lambda r: r.update(seed="0")), "field 'seed'"),
    (lambda d: edit_record(d, lambda r: (r.update(seed="0"), resign(r))), "field 'seed' = \"0\" is not accepted"),
    (lambda d: edit_record(d, lambda r: (r.update(metrics=[]), resign(r))), "field 'metrics'"),
    (lambda d: edit_record(d, lambda r: (r.update(metrics_history={}), resign(r))), "field 'metrics_history'"),
    (lambda d: edit_record(d, lambda r: (r.update(schema="dlbench.run/99"), resign(r))), "unknown record schema"),
    (lambda d: edit_record(d, lambda r: (r.pop("config"), resign(r))), "lacks the field 'config'"),
    (lambda d: edit_record(d, lambda r: r["metrics"]["mig"].update(mig=0.99)), "does not match its digest"),
    (lambda d: edit_record(d, import_in_config), "import statement"),
    (lambda d: edit_record(d, lambda r: (r.update(config=r["config"] + "\nsome_module.x = @os.system()\n"),
                                         resign(r))), "not a registered configurable"),
    (lambda d: edit_record(d, lambda r: (r.update(run_id="other-run-0000000000"), resign(r))),
     "does not end with its fit_hash"),
    (lambda d: edit_record(d, lambda r: (r["model"].update(name="other_model"), resign(r))), "record was edited"),
    (lambda d: edit_record(d, lambda r: (r.update(replicate_axes=["seed"]), resign(r))), "replicate axis 'seed'"),
    (lambda d: number_in_record(d, "1e999"), "not valid JSON (the number 1e999 is out of range"),
    (lambda d: number_in_record(d, "-Infinity"), "not valid JSON (-Infinity is not strict JSON"),
    (lambda d: number_in_record(d, "NaN"), "not valid JSON (NaN is not strict JSON"),
    (lambda d: edit_record(d, lambda r: (r["metrics"]["mig"].update(mig=10 ** 400), resign(r))),
     "not valid JSON (the number 1000000000"),
    (lambda d: (d / records.RECORD_FILE).write_text("[" * 100_000), "not valid JSON (nested too deeply)"),
]


# Every command that reads a finished run refuses its damaged record; those that use its fit (evaluate, plot, and a
# rerun that re-scores it) refuse a state file that is not the one its record holds the digest of.
DAMAGE_CASES = [(damage, expected, command) for damage, expected in STATE_DAMAGE
                for command in ("evaluate", "plot", "rerun")]
DAMAGE_CASES += [(damage, expected, command) for damage, expected in RECORD_DAMAGE
                 for command in ("evaluate", "plot", "rerun")]


@pytest.mark.parametrize("damage, expected, command", DAMAGE_CASES,
                         ids=[f"damage{i}-{case[2]}" for i, case in enumerate(DAMAGE_CASES)])
def test_damaged_run_files_are_refused_and_left_as_they_are(world, capsys, tmp_path, damage, expected, command):
    run_dir = run_dir_in(world)
    damage(run_dir)
    canary = tmp_path / "canary_module"
    canary.mkdir()
    (canary / "dlbench_fault_canary.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    sys.path.insert(0, str(canary))
    try:
        if command == "evaluate":
            argv = ["evaluate", run_dir, "--metrics", "mig"]
        elif command == "plot":
            argv = ["plot", run_dir, "--out", world / "figures"]
        else:  # the same command again finds the finished (damaged) run and must not score or replace it
            argv = ["run", world / "tiny.gin", "--out", world / "runs", "--quiet", "-p", "mig.num_train = 250"]
        assert_one_line_failure(argv, world, capsys, expected)
    finally:
        sys.path.remove(str(canary))
    assert not (tmp_path / "imported").exists(), "a record's config made dlbench import a module"
    assert "dlbench_fault_canary" not in sys.modules


def test_a_corrupt_or_foreign_checkpoint_is_refused_naming_the_file(world, capsys, monkeypatch):
    from dlbench_linear_gaussian import solvers

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    real = solvers.fixed_point
    monkeypatch.setattr(solvers, "fixed_point", interrupted)
    assert main(["run", str(world / "tiny.gin"), "--out", str(world / "fresh"), "--quiet", "--seed", "5"]) == 130
    monkeypatch.setattr(solvers, "fixed_point", real)
    capsys.readouterr()
    (partial,) = (world / "fresh").glob("*.partial")
    checkpoint = partial / "checkpoints" / "solver_fixed_point.pt"
    for content, expected in ((b"garbage", "not a readable dlbench checkpoint"), (None, "a foreign checkpoint")):
        if content is None:
            torch.save({"weights": torch.zeros(3)}, checkpoint)
        else:
            checkpoint.write_bytes(content)
        err = assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "fresh", "--quiet", "--seed",
                                       "5"], world, capsys, expected)
        assert str(checkpoint) in err


# Everything else a hostile user might type ------------------------------------------------------------------

OTHER_CASES = [
    (["no_such_command"], "invalid choice"),
    ([], "required"),
    (["run"], "required"),
    (["list", "things"], "invalid choice"),
    (["bench", "no_such_bench"], "unknown benchmark 'no_such_bench'"),
    (["bench", "metrics", "nope", "--quick"], "unknown benchmark 'nope'; available: "),
    (["sweep", "tiny.gin", "--grid", "linear_gaussian.seed=[1]", "--grid", "linear_gaussian.seed = [2, 3]"],
     "--grid 'linear_gaussian.seed = [2, 3]' is not accepted: linear_gaussian.seed was given earlier"),
    (["sweep", "tiny.gin", "--split", "beta=1", "--split", "beta=2"], "beta was given earlier"),
    (["--disable-plugin", "no_such_plugin", "plugins"], "disabled plugin 'no_such_plugin'"),
    (["data", "info", "celeba"], "unknown dataset 'celeba'"),
    (["data", "preview", "dsprites", "--source", "procedural", "--seed", "-4"], "--seed = -4 is not accepted"),
    (["data", "prepare", "linear_gaussian"], "declares no published files"),
    (["data", "info", "dsprites", "--source", "nowhere"], "invalid choice"),
    (["data", "info", "linear_gaussian", "--source", "procedural"], "is not accepted"),
]


@pytest.mark.parametrize("argv, expected", OTHER_CASES, ids=[f"other{i}" for i in range(len(OTHER_CASES))])
def test_other_bad_commands(world, capsys, argv, expected, monkeypatch):
    monkeypatch.chdir(world)
    monkeypatch.setenv("DLBENCH_DISABLE_PLUGINS", "")  # --disable-plugin writes it; this restores it afterwards
    assert_one_line_failure(argv, world, capsys, expected)


def test_a_cache_directory_that_is_a_file(world, capsys):
    npz = world / dsprites.NPZ_NAME
    config = world / "official.gin"
    config.write_text(f'dataset.name = "dsprites"\ndataset.source = "official"\ndsprites.path = "{npz}"\n'
                      f"dsprites.factor_sizes = [1, 3, 1, 2, 2, 2]\ndsprites.file_checks = "
                      f"{json.dumps(fixtures.file_checks_for(npz))}\ndsprites.cache_dir = \"{world / 'a_file'}\"\n"
                      'model.name = "linear_gaussian_vae"\n')
    assert_one_line_failure(["run", config, "--out", world / "runs", "--quiet"], world, capsys,
                            "a part of that path is a file")


# What the third fault trial found ----------------------------------------------------------------------------


@pytest.mark.parametrize("cache_dir, expected", [
    ("a_file", "a_file is a file; expected a writable directory"),
    ("a_file/under", "a_file is a file; expected a writable directory"),
])
def test_an_unusable_stage_cache_is_refused_before_training(world, capsys, monkeypatch, cache_dir, expected):
    (world / "deep.gin").write_text(tiny_deep_gin(betas=[4], steps=2))
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(world / cache_dir))
    err = assert_one_line_failure(["run", world / "deep.gin", "--out", world / "deep_runs", "--quiet"], world, capsys,
                                  expected)
    assert err.startswith(f"dlbench: error: $DLBENCH_CACHE_DIR = {str(world / cache_dir)!r} cannot hold the stage "
                          "cache"), err
    assert not list((world / "deep_runs").iterdir())  # nothing trained, nothing left to resume


def test_a_missing_state_file_is_refused_by_plot_unless_only_the_record_is_asked_for(world, capsys):
    run_dir = run_dir_in(world)
    (run_dir / records.STATE_FILE).unlink()
    assert_one_line_failure(["plot", run_dir, "--out", world / "figures"], world, capsys,
                            "state.npz is missing (its record lists it), so the figures drawn from the fitted model "
                            "would be left out; restore it, or add --record-only")
    assert not (world / "figures").exists()
    assert main(["plot", str(run_dir), "--out", str(world / "figures"), "--record-only"]) == 0
    assert sorted(p.name for p in (world / "figures").iterdir()) == ["boxplots_lambda0_fixed_point.png",
                                                                     "heatmaps_fixed_point.png"]


@pytest.fixture
def http_server():
    """A server on loopback that answers every connection at once as an HTTP server answers bytes it cannot parse.
    (One that waits for a request line instead is refused after the timeout: tests/sweep.)"""
    import socketserver
    import threading

    class Answer(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("address, expected", [
    ("not a url", "(missing port number in address 'not a url')"),
    ("gopher://x", "(unknown address scheme 'gopher'"),
    ("http-server", "no Dask scheduler answered there (what answered does not speak Dask's protocol)"),
])
def test_an_address_where_no_dask_scheduler_runs_is_refused_within_seconds(world, capsys, http_server, address,
                                                                           expected):
    import time

    address = http_server if address == "http-server" else address
    started = time.perf_counter()
    err = assert_one_line_failure(["sweep", world / "tiny.gin", "--executor", "dask", "--scheduler", address, "--out",
                                   world / "runs", "--quiet"], world, capsys, expected)
    assert err.startswith(f"dlbench: error: --scheduler {address!r}: no Dask scheduler answered there"), err
    assert "expected the address of a running scheduler" in err
    assert time.perf_counter() - started < 10


OUT_OF_MEMORY = [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 102400000000 bytes. Error code 12 (Cannot allocate memory)"),
    MemoryError(),
]


@pytest.mark.parametrize("failure", OUT_OF_MEMORY, ids=["torch", "cpu_allocator", "python"])
def test_running_out_of_memory_during_a_fit_is_a_refusal_naming_what_was_asked(world, capsys, monkeypatch, failure):
    from dlbench_linear_gaussian import solvers

    def allocating(*args, **kwargs):
        raise failure

    monkeypatch.setattr(solvers, "fixed_point", allocating)
    err = assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "other_runs", "--quiet"], world,
                                  capsys, "the fit of model 'linear_gaussian_vae' ran out of memory on cpu")
    assert "; make it smaller: linear_gaussian_vae.betas = [1, 4], " in err and "num_starts = 2" in err, err
    assert ("one allocation of" in err) == (not isinstance(failure, MemoryError))
    assert not list((world / "other_runs").iterdir())


def test_a_run_resumed_at_its_scoring_refuses_a_state_file_that_is_not_its_fits(world, capsys, monkeypatch):
    from dlbench import evaluation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    real = evaluation.evaluate_metrics
    monkeypatch.setattr(evaluation, "evaluate_metrics", interrupted)  # the fit is finished, its scoring is not
    assert main(["run", str(world / "tiny.gin"), "--out", str(world / "fresh"), "--quiet", "--seed", "5"]) == 130
    monkeypatch.setattr(evaluation, "evaluate_metrics", real)
    capsys.readouterr()
    (partial,) = (world / "fresh").glob("*.partial")
    another_runs_state(partial)
    err = assert_one_line_failure(["run", world / "tiny.gin", "--out", world / "fresh", "--quiet", "--seed", "5"],
                                  world, capsys, NOT_ITS_STATE)
    assert f"{partial / records.STATE_FILE} does not match the state digest in {partial / 'fit.json'}" in err


# The training modes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bindings, expected", [
    (["training.precision = 'float16'"], "training.precision = 'float16' is not accepted; expected 'float32' or "
                                         "'bf16'"),
    (["training.compile = 1"], "training.compile = 1 is not accepted; expected True or False"),
    (["training.cuda_graphs = 'yes'"], "training.cuda_graphs = 'yes' is not accepted; expected True or False"),
    (["training.compile = True", "training.cuda_graphs = True"],
     "training.cuda_graphs = True is not accepted; expected False while training.compile = True"),
    # Refused by the engine, on a CPU, before the first step (and before any stage is cached).
    (["training.cuda_graphs = True"], "training.cuda_graphs = True needs a CUDA device; this fit runs on cpu; set "
                                      "training.cuda_graphs = False"),
])
def test_bad_training_modes_are_refused_before_training(world, capsys, monkeypatch, bindings, expected):
    (world / "deep.gin").write_text(tiny_deep_gin(betas=[4], steps=2))
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(world / "cache"))
    options = [item for binding in bindings for item in ("-p", binding)]
    assert_one_line_failure(["run", world / "deep.gin", "--out", world / "deep_runs", "--quiet", "--device", "cpu",
                             *options], world, capsys, expected)
    assert not list((world / "cache").rglob("*.pt"))
