"""scripts/gpu_check.sh: every part within its own time limit, a failing or missing part recorded and the next one
run, one JSON and one summary written; installation with no network."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))
import gpu_check  # noqa: E402  (a script folder, not a package)
import gpu_check_env  # noqa: E402

NO_NETWORK = {"PIP_INDEX_URL": "http://127.0.0.1:9/", "PIP_NO_INDEX": "1"}


def _check(out: Path, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, dict, str]:
    completed = subprocess.run([str(SCRIPTS / "gpu_check.sh"), "--out", str(out), *args], capture_output=True,
                               text=True, timeout=timeout, env={**os.environ, "PYTHON": sys.executable})
    return completed, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.txt").read_text()


def _parts(report: dict) -> dict[str, dict]:
    return {part["name"]: part for part in report["parts"]}


def test_a_dry_run_records_the_device_and_a_benchmark_this_checkout_lacks(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(gpu_check.TIME_LIMITS, "no_such_benchmark", (30, 30))
    code = gpu_check.main(["--cpu-dry-run", "--out", str(tmp_path), "--python", sys.executable,
                           "--parts", "install,no_such_benchmark,device"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = _parts(report)
    assert code == 0 and report["mode"] == "cpu dry run"
    assert parts["install"]["status"] == "ok" and report["environment"]["how"] == "reused"
    assert parts["no_such_benchmark"]["status"] == "not available"
    assert parts["no_such_benchmark"]["error"] == "not available in this checkout"
    assert parts["device"]["status"] == "ok" and report["device"]["cuda_available"] is False
    assert report["device"]["torch"].split("+")[0] == __import__("torch").__version__.split("+")[0]
    summary = (tmp_path / "gpu_check.txt").read_text()
    assert "no_such_benchmark  not available" in summary and summary in capsys.readouterr().out


def test_a_part_past_its_time_limit_is_stopped_and_the_next_part_runs(tmp_path):
    completed, report, summary = _check(tmp_path, "--cpu-dry-run", "--parts", "deep_vae_stacking,device",
                                        "--limit", "deep_vae_stacking=2")
    parts = _parts(report)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert parts["deep_vae_stacking"]["status"] == "timeout" and parts["deep_vae_stacking"]["limit_s"] == 2
    assert parts["deep_vae_stacking"]["seconds"] < 15
    assert parts["device"]["status"] == "ok"
    assert "stopped at its time limit of 2 s" in summary


def test_a_part_that_breaks_the_driver_is_recorded_as_failed(tmp_path, monkeypatch):
    def broken(check, limit):
        raise KeyError("gpus")
    monkeypatch.setattr(gpu_check, "part_device", broken)
    code = gpu_check.main(["--out", str(tmp_path), "--python", sys.executable, "--parts", "device,install"])
    parts = _parts(json.loads((tmp_path / "gpu_check.json").read_text()))
    assert code == 1 and parts["device"]["status"] == "failed"
    assert parts["device"]["error"] == "driver error: KeyError: 'gpus'"
    assert parts["install"]["status"] == "ok"


def test_bad_arguments_are_refused_with_the_accepted_names(tmp_path):
    completed = subprocess.run([str(SCRIPTS / "gpu_check.sh"), "--parts", "device,gpu_test"], capture_output=True,
                               text=True, env={**os.environ, "PYTHON": sys.executable})
    assert completed.returncode == 2 and "unknown part 'gpu_test'; expected some of install, device" in completed.stderr


def test_junit_outcomes_are_counted_with_their_messages(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite name="pytest" tests="3">'
                     '<testcase name="test_a" time="1.5"/>'
                     '<testcase name="test_b" time="2"><failure message="AssertionError: gap 3e-3">trace'
                     '</failure></testcase>'
                     '<testcase name="test_c" time="0"><skipped message="needs a CUDA device"/></testcase>'
                     '</testsuite></testsuites>')
    results = gpu_check.junit_results(junit)
    assert results["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    assert results["cases"][1] == {"test": "test_b", "outcome": "failed", "seconds": 2.0,
                                   "message": "AssertionError: gap 3e-3"}


def _python_without_dlbench() -> str:
    base = getattr(sys, "_base_executable", None)
    probe = subprocess.run([base or "", "-c", "import importlib.util as u; print(u.find_spec('dlbench') is None)"],
                           capture_output=True, text=True, cwd="/") if base else None
    if probe is None or probe.stdout.strip() != "True":
        pytest.skip("needs an interpreter (the venv's base) that does not have dlbench installed")
    return base


def test_the_source_tree_runs_the_checkout_with_neither_pip_nor_an_install(tmp_path):
    python = _python_without_dlbench()
    environment = gpu_check_env.Environment(python)
    deadline = gpu_check_env.Deadline(60)
    assert gpu_check_env._attempt(environment, "source tree", python, REPO, tmp_path, deadline,
                                  lambda: gpu_check_env._source_tree(REPO, tmp_path / "site"))
    assert environment.how == "source tree" and str(REPO) in environment.variables["PYTHONPATH"]


def test_a_fresh_venv_installs_the_checkout_with_no_network(tmp_path, monkeypatch):
    for name, value in NO_NETWORK.items():
        monkeypatch.setenv(name, value)
    environment = gpu_check_env.prepare(REPO, sys.executable, tmp_path, None, 120, reinstall=True)
    assert environment.how == "venv", environment.attempts
    assert environment.python == str(tmp_path / "venv" / "bin" / "python")
    assert environment.requirements["torch"] is not None  # the base interpreter's torch, seen from the venv


@pytest.mark.slow
def test_a_cpu_dry_run_completes_every_part_it_can(tmp_path):
    completed, report, summary = _check(tmp_path, "--cpu-dry-run", timeout=900)
    parts = _parts(report)
    assert list(parts) == list(gpu_check.TIME_LIMITS)
    assert all(part["status"] in ("ok", "not available") for part in parts.values()), completed.stdout
    assert parts["gpu_tests"]["tests"]["counts"]["skipped"] >= 3
    assert any(row.get("faster") for row in parts["deep_vae_stacking"]["rows"])
    assert "deep_vae grouped conv vs batched matmul S=2" in summary


def test_a_requirement_still_missing_after_installation_fails_the_install_part_and_the_rest_runs(tmp_path,
                                                                                                 monkeypatch):
    def prepared_without_torch(repo, python, *args):
        return gpu_check_env.Environment(python=python, how="reused",
                                         requirements={"torch": None, "numpy": "2.0"})
    monkeypatch.setattr(gpu_check_env, "prepare", prepared_without_torch)
    code = gpu_check.main(["--cpu-dry-run", "--out", str(tmp_path), "--python", sys.executable,
                           "--parts", "install,device"])
    parts = _parts(json.loads((tmp_path / "gpu_check.json").read_text()))
    assert code == 1 and parts["install"]["status"] == "failed"
    assert parts["install"]["error"].startswith("requirements still missing: torch (no wheel for them in ")
    assert parts["device"]["status"] == "ok"  # this interpreter has torch: the part ran all the same
