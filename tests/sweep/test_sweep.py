"""Studies: grids, splits, stable ids, resuming, failures and the command line, with the in-process executor."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_helpers import TINY_LINEAR_GIN
from sweep_test_helpers import finished_records, leftovers

from dlbench.cli import main
from dlbench.errors import ConfigError, UnknownNameError
from dlbench.executors import FAILED, REUSED, TRAINED, DaskExecutor, InProcessExecutor, ProcessExecutor
from dlbench.sweep import make_executor, plan_study, run_sweep

HEAVY = {"torch", "sklearn", "scipy", "matplotlib", "numpy", "gin", "h5py", "tqdm"}


def settings_of(runs) -> set[tuple[str, ...]]:
    return {run.settings for run in runs}


def test_grid_is_the_cartesian_product_with_ids_independent_of_order(study):
    runs = plan_study([study], grids=["linear_gaussian.seed=[1, 2, 3]", "linear_gaussian_vae.num_starts=[2, 3]"])
    assert len(runs) == 6 and len({run.plan_id for run in runs}) == 6
    assert ("linear_gaussian.seed=2", "linear_gaussian_vae.num_starts=3") in settings_of(runs)
    assert {run.model for run in runs} == {"linear_gaussian_vae"}
    swapped = plan_study([study], bindings=["linear_gaussian_vae.tol = 1e-4", "linear_gaussian.s = 3"],
                         grids=["linear_gaussian_vae.num_starts=[3, 2]", "linear_gaussian.seed=[3, 1, 2]"])
    reordered = plan_study([study], bindings=["linear_gaussian.s = 3", "linear_gaussian_vae.tol = 1e-4"],
                           grids=["linear_gaussian.seed=[1, 2, 3]", "linear_gaussian_vae.num_starts=[2, 3]"])
    assert {run.plan_id for run in swapped} == {run.plan_id for run in reordered}
    assert not {run.plan_id for run in swapped} & {run.plan_id for run in runs}  # the tol binding is a setting
    # the same study written as `# sweep:` lines of its gin file plans the same runs, with the same ids
    study_file = study.with_name("with_grid.gin")
    study_file.write_text(TINY_LINEAR_GIN + "# sweep: linear_gaussian.seed = [1, 2, 3]\n"
                                       "#sweep:linear_gaussian_vae.num_starts=[2, 3]\n")
    assert {run.plan_id for run in plan_study([study_file])} == {run.plan_id for run in runs}
    # a command-line axis replaces the file's axis of the same target
    narrowed = plan_study([study_file], grids=["linear_gaussian.seed=[1]"])
    assert settings_of(narrowed) == {("linear_gaussian.seed=1", "linear_gaussian_vae.num_starts=2"),
                                     ("linear_gaussian.seed=1", "linear_gaussian_vae.num_starts=3")}


def test_a_study_without_a_grid_is_one_run_and_the_same_config_is_planned_once(study):
    (single,) = plan_study([study])
    assert single.settings == () and single.bindings == ()
    (same,) = plan_study([study], grids=["linear_gaussian.s=[3]"])  # the file's value: the same config
    assert same.plan_id == single.plan_id


@pytest.mark.parametrize("grid", ["linear_gaussian.seed", "linear_gaussian.seed=", "linear_gaussian.seed=[]",
                                  "linear_gaussian.seed=5", "=[1, 2]", "linear_gaussian.seed=[1, 2",
                                  "linear_gaussian.seed=[@not_registered]", "linear_gaussian.seed=[1, 1]",
                                  "linear_gaussian.seed=[1]; import os"])
def test_a_bad_grid_is_refused_in_one_line(study, capsys, grid):
    with pytest.raises(ConfigError, match=r"^--grid .* is not accepted; expected ") as refused:
        plan_study([study], grids=[grid])
    assert "\n" not in str(refused.value)
    assert main(["sweep", str(study), "--grid", grid, "--out", str(study.parent / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbench: error: --grid ") and err.count("\n") == 1


def test_study_file_mistakes_name_the_file_and_line(study):
    study.write_text(TINY_LINEAR_GIN + "# sweep: linear_gaussian.seed = 3\n")
    with pytest.raises(ConfigError, match=r"study.gin, line 13: '# sweep: linear_gaussian.seed = 3' is not "):
        plan_study([study])
    study.write_text(TINY_LINEAR_GIN + "# sweep-split: beta = 0\n")
    with pytest.raises(ConfigError, match=r"line 13: '# sweep-split: beta = 0' is not accepted; expected AXIS=N"):
        plan_study([study])


def test_a_run_that_cannot_be_built_is_refused_before_any_run_starts(study, tmp_path):
    with pytest.raises(UnknownNameError, match=r"^study run dataset.name='dsprits': unknown dataset 'dsprits'"):
        plan_study([study], grids=['dataset.name=["linear_gaussian", "dsprits"]'])
    with pytest.raises(ConfigError, match=r"^study run linear_gaussian_vae.num_starts=0: .*num_starts = 0 is not"):
        plan_study([study], grids=["linear_gaussian_vae.num_starts=[0, 1]"], splits=["beta=1"])
    with pytest.raises(ConfigError, match="-p binds linear_gaussian.seed, which is also a grid axis"):
        plan_study([study], bindings=["linear_gaussian.seed = 4"], grids=["linear_gaussian.seed=[1, 2]"])
    assert not (tmp_path / "runs").exists()


def test_split_cuts_a_stack_into_runs_whose_records_hold_every_value(study, tmp_path):
    runs = plan_study([study], splits=["beta=1"])
    assert settings_of(runs) == {("beta=[1.0]",), ("beta=[4.0]",)}
    assert {run.bindings[-1] for run in runs} == {"linear_gaussian_vae.betas = [1.0]",
                                                  "linear_gaussian_vae.betas = [4.0]"}
    result = run_sweep(runs, out_dir=tmp_path / "runs", progress=False)
    assert result.count(TRAINED) == 2 and result.exit_status == 0
    written = finished_records(tmp_path / "runs").values()
    assert sorted(beta for record in written for beta in record["solution_axes"]["beta"]) == [1.0, 4.0]
    assert all(record["solution_axes"]["lambda"] == [0.0, 2.0] for record in written)
    # two axes at once, with chunks of two values: λ has two values, so it stays one chunk
    both = plan_study([study], grids=["linear_gaussian.seed=[1, 2]"], splits=["beta=1", "lambda=2"])
    assert len(both) == 4 and all(len(run.settings) == 2 for run in both)


def test_splitting_an_axis_the_model_does_not_declare_is_refused_naming_the_ones_it_does(study, capsys):
    with pytest.raises(ConfigError, match=r"^--split start=1 is not accepted; expected an axis model "
                                          r"'linear_gaussian_vae' declares \(solver, beta, lambda\)$"):
        plan_study([study], splits=["start=1"])
    assert main(["sweep", str(study), "--split", "beta=none"]) == 2
    assert "--split 'beta=none' is not accepted; expected AXIS=N" in capsys.readouterr().err


def test_a_sweep_resumes_training_only_what_is_missing(study, tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["sweep", str(study), "--grid", "linear_gaussian.seed=[1, 2, 3]", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    output = capsys.readouterr().out
    assert "study: 3 runs" in output
    assert sum(line.startswith("[") and " trained " in line for line in output.splitlines()) == 3
    first = finished_records(out)
    assert len(first) == 3 and leftovers(out) == []
    deleted = sorted(first)[1]
    import shutil

    shutil.rmtree(out / deleted)
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert sum(" trained " in line for line in lines) == 1 and sum(" reused " in line for line in lines) == 2
    assert deleted in next(line for line in lines if " trained " in line)
    assert set(finished_records(out)) == set(first) and leftovers(out) == []


def test_an_interrupted_sweep_resumes_where_it_stopped(study, tmp_path, monkeypatch):
    from dlbench_linear_gaussian import solvers

    out = tmp_path / "runs"
    runs = plan_study([study], grids=["linear_gaussian.seed=[1, 2, 3]"])
    real_solver = solvers.fixed_point
    calls = []

    def interrupted_on_the_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_solver(*args, **kwargs)

    monkeypatch.setattr(solvers, "fixed_point", interrupted_on_the_second_run)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs, out_dir=out, progress=False)
    assert len(finished_records(out)) == 1
    assert [name for name in leftovers(out) if name.endswith(".partial")]  # the interrupted run's work is kept
    result = run_sweep(runs, out_dir=out, progress=False)
    assert (result.count(REUSED), result.count(TRAINED)) == (1, 2)
    assert len(finished_records(out)) == 3 and leftovers(out) == []


def test_a_failing_run_is_reported_and_the_sweep_goes_on(study, tmp_path, capsys):
    out = tmp_path / "runs"
    # num_latent 1 passes planning (the factory accepts it) and is refused by the fit
    assert main(["sweep", str(study), "--grid", "linear_gaussian_vae.num_latent=[1, 3, 4]", "--out", str(out)]) == 2
    output = capsys.readouterr().out
    (failed,) = [line for line in output.splitlines() if " failed " in line and line.startswith("[")]
    assert "linear_gaussian_vae.num_latent=1: linear_gaussian_vae.num_latent = 1" in failed
    table = output.split("wall_s\n", 1)[1].splitlines()[1].split()
    assert table[:4] == ["3", "2", "0", "1"]  # runs, trained, reused, failed
    assert "run the same command again to retry them" in output
    assert len(finished_records(out)) == 2


def test_a_run_held_by_another_process_is_reported_failed_without_wait(study, tmp_path):
    from dlbench.locking import RunLock

    out = tmp_path / "runs"
    runs = plan_study([study])
    (first,) = run_sweep(runs, out_dir=out, progress=False).outcomes
    (out / first.run_id).rename(out / "moved")
    with RunLock(out / f"{first.run_id}.lock", "run"):
        (held,) = run_sweep(runs, out_dir=out, progress=False, report=False).outcomes
    assert held.status == FAILED and "is held by pid" in held.message


def test_executor_options(tmp_path):
    assert isinstance(make_executor(), InProcessExecutor)
    pool = make_executor(workers=2, device="cpu")
    assert isinstance(pool, ProcessExecutor) and pool.gpus == []
    assert isinstance(make_executor("dask", scheduler="tcp://127.0.0.1:8786"), DaskExecutor)
    for kind, workers, scheduler, message in [
            ("dask", None, None, "--executor dask needs --scheduler ADDRESS"),
            ("dask", 2, "tcp://127.0.0.1:8786", "--workers 2 is not accepted with --executor dask"),
            ("local", None, "tcp://127.0.0.1:8786", "--scheduler 'tcp://127.0.0.1:8786' is not accepted"),
            ("local", 0, None, "--workers 0 is not accepted; expected an integer >= 1")]:
        with pytest.raises(ConfigError, match=message):
            make_executor(kind, workers, scheduler)
    with pytest.raises(ConfigError, match=r"^--scheduler 'tcp://127.0.0.1:9': no Dask scheduler answered"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout=1).connect()


def test_a_server_that_accepts_and_never_answers_is_no_scheduler_within_the_timeout():
    import socket
    import time

    with socket.create_server(("127.0.0.1", 0)) as silent:  # connections queue in its backlog, never answered
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.perf_counter()
        with pytest.raises(ConfigError, match=r"no Dask scheduler answered there \(no answer within 1 s\)"):
            DaskExecutor(address, connect_timeout=1).connect()
        assert time.perf_counter() - started < 5


def test_dry_run_prints_the_plan_and_runs_nothing(study, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["sweep", str(study), "--grid", "linear_gaussian.seed=[1, 2]", "--split", "lambda=1",
                 "--workers", "2", "--device", "cpu", "--out", str(out), "--dry-run"]) == 0
    output = capsys.readouterr().out
    assert "study: 4 runs" in output and "in 2 local worker processes" in output
    ids = {run.plan_id for run in plan_study([study], grids=["linear_gaussian.seed=[1, 2]"], splits=["lambda=1"])}
    assert all(plan_id in output for plan_id in ids)
    assert not out.exists() or not any(out.iterdir())


def test_help_with_the_sweep_command_imports_nothing_heavy(tmp_path):
    code = ("import sys, json\nfrom dlbench.cli import main\n"
            "try:\n    main(['sweep', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('MODULES=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "--grid" in completed.stdout and "# sweep-split: beta = 1" in completed.stdout
    loaded = json.loads(completed.stdout.rsplit("MODULES=", 1)[1])
    assert not set(loaded) & HEAVY
