"""Sweeps in real processes: local worker processes, a Dask cluster on loopback with a worker killed mid-run, and
two sweeps racing on one output directory. Each run must end as exactly one valid record, with nothing left over."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from cli_helpers import TINY_LINEAR_GIN
from sweep_test_helpers import finished_records, leftovers

from dlbench.cli import main
from dlbench.executors import FAILED, TRAINED, DaskExecutor, ProcessExecutor
from dlbench.runner import CHECKPOINT_DIR, FIT_FILE
from dlbench.sweep import plan_study, run_sweep


# AdamW after the fixed-point solver: the fixed-point checkpoint is written early, and AdamW keeps the run busy
# for a few seconds after it, so a worker can be killed mid-run with work to resume.
def slow_bindings(adamw_iterations: int) -> list[str]:
    return ['linear_gaussian_vae.solvers = ["fixed_point", "adamw"]', "linear_gaussian_vae.betas = [4]",
            "linear_gaussian_vae.lambdas = [0]", "linear_gaussian_vae.num_starts = 2",
            f"linear_gaussian_vae.adamw_iterations = {adamw_iterations}"]


SLOW_BINDINGS = slow_bindings(3000)


def kill_first_run_after_its_checkpoint(out: Path, is_worker: Callable[[int], bool], killed: dict,
                                        stop: threading.Event):
    """SIGKILL the worker that holds the first run seen with a finished solver checkpoint and its fit segment saved
    (the holder is read from the run's lock)."""
    while not stop.is_set():
        for partial in out.glob("*.partial"):
            if not ((partial / CHECKPOINT_DIR / "solver_fixed_point.pt").exists() and (partial / FIT_FILE).exists()):
                continue
            run_id = partial.name.removesuffix(".partial")
            try:
                holder = json.loads((out / f"{run_id}.lock").read_text())
            except (OSError, ValueError):
                continue
            if is_worker(holder["pid"]):
                os.kill(holder["pid"], signal.SIGKILL)
                killed.update(run_id=run_id, pid=holder["pid"])
                return
        time.sleep(0.01)


def check_every_run_once(out: Path, outcomes) -> dict[str, dict]:
    written = finished_records(out)
    assert sorted(written) == sorted(outcome.run_id for outcome in outcomes)
    assert leftovers(out) == []  # no .partial, .lock or .takeover left behind
    return written


def test_local_worker_processes_run_a_sweep(study, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["sweep", str(study), "--grid", "linear_gaussian.seed=[1, 2, 3]", "--workers", "2",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(lines) == 3 and all(" trained " in line and f":{os.getpid()}" not in line for line in lines)
    assert len(finished_records(out)) == 3 and leftovers(out) == []


@pytest.mark.slow
def test_a_local_worker_killed_mid_run_is_replaced_and_its_run_resumed(study, tmp_path):
    out = tmp_path / "runs"
    runs = plan_study([study], SLOW_BINDINGS, grids=["linear_gaussian.seed=[1, 2, 3]"])
    import psutil

    def is_pool_worker(pid: int) -> bool:
        return pid in {child.pid for child in psutil.Process().children()}

    killed, stop = {}, threading.Event()
    watcher = threading.Thread(target=kill_first_run_after_its_checkpoint, args=(out, is_pool_worker, killed, stop),
                               daemon=True)
    watcher.start()
    try:
        result = run_sweep(runs, ProcessExecutor(2), out_dir=out, device="cpu", progress=False)
    finally:
        stop.set()
        watcher.join()
    assert killed and result.count(TRAINED) == 3 and result.exit_status == 0
    written = check_every_run_once(out, result.outcomes)
    segments = written[killed["run_id"]]["fit"]["segments"]
    assert len(segments) == 2 and segments[1]["resumed"]  # the retry went on from the fixed-point checkpoint


@pytest.mark.slow
def test_dask_sweep_survives_a_worker_killed_mid_run(study, tmp_path):
    from distributed import Client, LocalCluster

    out = tmp_path / "runs"
    runs = plan_study([study], SLOW_BINDINGS, grids=["linear_gaussian.seed=[1, 2, 3]"])
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
        killed, stop = {}, threading.Event()
        watcher = threading.Thread(target=kill_first_run_after_its_checkpoint,
                                   args=(out, worker_pids.__contains__, killed, stop), daemon=True)
        watcher.start()
        try:
            result = run_sweep(runs, DaskExecutor(cluster.scheduler_address), out_dir=out, device="cpu",
                               progress=False)
        finally:
            stop.set()
            watcher.join()
    assert killed, "no worker was killed: the runs finished too fast to catch one"
    assert result.count(TRAINED) == 3 and result.exit_status == 0
    written = check_every_run_once(out, result.outcomes)
    record = written[killed["run_id"]]
    assert len(record["fit"]["segments"]) == 2 and record["fit"]["segments"][1]["resumed"]
    retried = next(outcome for outcome in result.outcomes if outcome.run_id == killed["run_id"])
    assert not retried.worker.endswith(f":{killed['pid']}")


def test_dask_sweep_runs_each_run_once_and_reports_failures(study, tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "runs"
    runs = plan_study([study], grids=["linear_gaussian_vae.num_latent=[1, 3, 4]"])
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        result = run_sweep(runs, DaskExecutor(cluster.scheduler_address), out_dir=out, device="cpu", progress=False)
        again = run_sweep(runs, DaskExecutor(cluster.scheduler_address), out_dir=out, device="cpu", progress=False)
    assert (result.count(TRAINED), result.count(FAILED), result.exit_status) == (2, 1, 2)
    (failed,) = [outcome for outcome in result.outcomes if outcome.status == FAILED]
    assert "num_latent = 1" in failed.message
    check_every_run_once(out, [outcome for outcome in result.outcomes if outcome.status != FAILED])
    assert [outcome.status for outcome in again.outcomes].count("reused") == 2


def test_two_sweeps_racing_on_one_directory_train_each_run_once(study, tmp_path):
    out = tmp_path / "runs"
    study.write_text(TINY_LINEAR_GIN + "\n".join(slow_bindings(500)) + "\n")
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweeps = [subprocess.Popen([sys.executable, "-m", "dlbench", "sweep", str(study), "--grid", grid, "--out", str(out),
                                "--wait", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment)
              for grid in ("linear_gaussian.seed=[1, 2, 3, 4]", "linear_gaussian.seed=[4, 3, 2, 1]")]
    outputs = []
    for process in sweeps:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        outputs.append([line for line in stdout.splitlines() if line.startswith("[")])
    statuses = [line.split()[1] for lines in outputs for line in lines]
    assert statuses.count("trained") == 4 and statuses.count("reused") == 4
    written = finished_records(out)
    assert len(written) == 4 and leftovers(out) == []
    assert {record["run_id"] for record in written.values()} == set(written)


def test_each_local_worker_takes_the_next_gpu(monkeypatch):
    import multiprocessing

    from dlbench.executors import _start_worker

    started_workers = multiprocessing.get_context("spawn").Value("i", 0)
    seen = []
    for _ in range(3):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2,5")
        _start_worker(started_workers, ["2", "5"], 1)
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["2", "5", "2"]


@pytest.mark.slow
def test_bench_sweep_quick():
    from dlbench.sweep import bench_sweep

    rows = bench_sweep(quick=True)
    assert [row["name"].split(", ", 1)[1] for row in rows] == ["2 local worker processes",
                                                                "Dask LocalCluster, 2 workers"]
    for row in rows:
        assert set(row) == {"name", "seconds", "baseline_seconds", "ratio", "note"}
        assert row["ratio"] == pytest.approx(row["baseline_seconds"] / row["seconds"])
