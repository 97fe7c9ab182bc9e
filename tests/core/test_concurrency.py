"""Runs that cannot destroy each other, in real processes: races on one output directory, SIGKILL at random
moments, and the lock's take-over rules."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import reproducible_part

from dlbench import records
from dlbench.errors import RunLockedError
from dlbench.locking import RunLock

CONFIG = """
dataset.name = "linear_gaussian"
linear_gaussian.n = 10
linear_gaussian.s = 2
model.name = "linear_gaussian_vae"
linear_gaussian_vae.num_latent = 3
linear_gaussian_vae.betas = [1, 4]
linear_gaussian_vae.lambdas = [0, 2]
linear_gaussian_vae.solvers = ["fixed_point", "adamw"]
linear_gaussian_vae.num_starts = 2
linear_gaussian_vae.max_half_steps = 1000
linear_gaussian_vae.adamw_iterations = 600
evaluation.metrics = ["mig"]
mig.protocol = "dlib"
mig.num_train = 300
"""


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlbench", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "race.gin"
    path.write_text(CONFIG)
    return path


def run_id_of(config: Path, tmp_path: Path) -> str:
    completed = subprocess.run([sys.executable, "-m", "dlbench", "run", str(config), "--out", str(tmp_path / "probe"),
                                "--quiet"], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = [p for p in (tmp_path / "probe").iterdir() if p.is_dir()]
    return run_dir.name


def wait_for(path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_two_identical_runs_and_two_evaluates_race_to_one_record_with_every_score(tmp_path, config):
    run_id = run_id_of(config, tmp_path)
    out = tmp_path / "runs"
    first = start("run", str(config), "--out", str(out), "--quiet", "--wait", cwd=tmp_path)
    wait_for(out / f"{run_id}.lock")
    second = start("run", str(config), "--out", str(out), "--quiet", "--wait", cwd=tmp_path)
    evaluations = [start("evaluate", str(out / run_id), "--metrics", metric, "--wait",
                         "-p", f"{metric}.protocol = 'dlib'", "-p", f"{metric}.num_train = 300", cwd=tmp_path)
                   for metric in ("i_m", "unsupervised")]
    results = [finish(process) for process in (first, second, *evaluations)]
    for code, _, err in results:
        assert code == 0, err
    assert sum("already finished" in out_text for _, out_text, _ in results[:2]) == 1
    run_dirs = [p.name for p in out.iterdir()]
    assert run_dirs == [run_id], run_dirs  # no partial, stale or lock file left
    record = records.read_record(out / run_id)
    assert {"exact", "mig", "i_m", "unsupervised"} <= set(record["metrics"])


def test_a_held_run_is_refused_naming_its_holder(tmp_path, config):
    out = tmp_path / "runs"
    run_id = run_id_of(config, tmp_path)
    lock = RunLock(out / f"{run_id}.lock", f"run {run_id}")
    with lock:
        code, _, err = finish(start("run", str(config), "--out", str(out), "--quiet", cwd=tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert f"is held by pid {os.getpid()} on {socket.gethostname()}" in err and "--wait" in err
    assert not (out / f"{run_id}.lock").exists()


def test_a_finished_record_found_at_the_final_rename_is_kept(tmp_path, config, monkeypatch):
    """A run whose lock expired under it (another host took it over and finished first) keeps the finished record."""
    from dlbench import runner

    out = tmp_path / "runs"
    run_id = run_id_of(config, tmp_path)
    finished = tmp_path / "probe" / run_id
    real_finish = runner._finish

    def someone_finished_first(work_dir, final_dir):
        import shutil

        shutil.copytree(finished, final_dir)
        return real_finish(work_dir, final_dir)

    monkeypatch.setattr(runner, "_finish", someone_finished_first)
    before = (finished / records.RECORD_FILE).read_bytes()
    result = runner.run_experiment([config], out_dir=out, progress=False)
    assert result.reused and "it is kept" in result.note
    assert (out / run_id / records.RECORD_FILE).read_bytes() == before
    assert not list(out.glob("*.partial"))


def test_a_lock_of_a_dead_process_is_taken_over_and_a_live_one_is_not(tmp_path):
    path = tmp_path / "x.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "started": "then"}))
    with RunLock(path, "run x"):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "started": "now"}))
    with pytest.raises(RunLockedError, match=f"held by pid {os.getppid()}"):
        RunLock(path, "run x").acquire()


def test_a_lock_on_another_host_expires_only_without_a_heartbeat(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "then"}))
    with pytest.raises(RunLockedError, match="on elsewhere"):
        RunLock(path, "run x", expiry_seconds=60).acquire()
    old = time.time() - 120
    os.utime(path, (old, old))
    with RunLock(path, "run x", expiry_seconds=60):
        assert json.loads(path.read_text())["host"] == socket.gethostname()


def test_the_heartbeat_keeps_a_long_lock_fresh(tmp_path):
    path = tmp_path / "x.lock"
    with RunLock(path, "run x", heartbeat_seconds=0.05):
        old = time.time() - 1000
        os.utime(path, (old, old))
        time.sleep(0.3)
        assert time.time() - path.stat().st_mtime < 5


def _state(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / records.STATE_FILE) as arrays:
        return {name: arrays[name] for name in arrays.files}


def kill_trials(tmp_path: Path, config: Path, trials: int) -> list[float]:
    reference = tmp_path / "reference"
    assert subprocess.run([sys.executable, "-m", "dlbench", "run", str(config), "--out", str(reference), "--quiet"],
                          capture_output=True, timeout=600).returncode == 0
    (reference_dir,) = [p for p in reference.iterdir() if p.is_dir()]
    expected_record, expected_state = records.read_record(reference_dir), _state(reference_dir)
    rng = random.Random(20261128)
    moments = []
    for trial in range(trials):
        out = tmp_path / f"killed{trial}"
        process = start("run", str(config), "--out", str(out), "--quiet", cwd=tmp_path)
        moment = rng.uniform(0.5, 4.0)
        moments.append(moment)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        code, _, err = finish(start("run", str(config), "--out", str(out), "--quiet", cwd=tmp_path))
        assert code == 0, f"trial {trial}, killed after {moment:.2f} s: {err}"
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
        assert [p.name for p in out.iterdir()] == [run_dir.name]
        record = records.read_record(run_dir)
        assert reproducible_part(record) == reproducible_part(expected_record), f"trial {trial}"
        state = _state(run_dir)
        assert all(np.array_equal(state[k], expected_state[k], equal_nan=True) for k in expected_state), trial
    return moments


def test_sigkill_at_random_moments_then_a_rerun_equals_the_uninterrupted_run(tmp_path, config):
    kill_trials(tmp_path, config, trials=3)


@pytest.mark.slow
def test_sigkill_many_times(tmp_path, config):
    moments = kill_trials(tmp_path, config, trials=20)
    print(f"20 SIGKILL trials at {sorted(round(m, 2) for m in moments)} s: every rerun equal to the reference")
