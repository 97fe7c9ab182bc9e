"""The GPU check: measures whatever happens on a machine with a CUDA device, and writes it down.

    scripts/gpu_check.sh [--out DIR] [--cpu-dry-run] [--parts a,b] [--limit PART=SECONDS] [--fetch-wheels]

Each part below runs in turn within its own time limit (seconds, sized for one H100; about eight minutes in all, and
never more than --budget together). A part that fails or runs out of time is recorded with its output and the next
one runs; a benchmark this checkout does not have is recorded as not available. After every part one JSON file
(gpu_check.json) and one readable summary (gpu_check.txt) are rewritten in the output folder ($OUT, --out, or
.gpu-check/results), with every part's output in gpu_check.log.

Installation needs no network (gpu_check_env.py): what is installed is reused. Requirements missing on the GPU
machine (gin-config there) come from the wheelhouse .gpu-check/wheels, which `--fetch-wheels` fills on a machine
with a package index. --cpu-dry-run hides any GPU and runs every part on the CPU with the benchmarks' --quick sizes.
Standard library only: it runs before anything is installed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import gpu_check_env
from gpu_check_worker import NOT_AVAILABLE, PLUGIN_FAILED

# Each part in the order it runs, with its time limit in seconds on one H100 (about eight minutes in all) and in a
# --cpu-dry-run on 2 CPU cores at --quick sizes (shared cores can be ten times slower than idle ones).
TIME_LIMITS = {                        # gpu   cpu dry run
    "install": (45, 120),              # reuse, else a venv + editable install with no network, else the source tree
    "device": (20, 60),                # GPU name and memory, torch / CUDA / cuDNN versions, the float32 policy
    "gpu_tests": (75, 120),            # tests/training/test_gpu.py, gpu-marked
    "engine_ops": (25, 120),           # operations and host syncs per engine step
    "deep_vae_modes": (90, 300),       # eager / compiled / CUDA graphs / bf16 steps/s of one model (compiling is slow)
    "deep_vae_stacking": (100, 300),   # model-steps/s at S = 1, 10, 50, 250; grouped conv vs batched matmul
    "deep_vae_training": (45, 300),    # the engine against a DataLoader loop, per dataset
    "deep_vae_models": (40, 400),      # every deep model's steps/s against the β-VAE's
    "linear_gaussian_adamw": (40, 120),  # the full linear AdamW grid's rate
}
BUDGET = {"gpu": 540, "cpu dry run": 1800}  # seconds for all parts together
MIN_PART_SECONDS = 5
REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "gpu_check_worker.py"
GPU_TESTS = "tests/training/test_gpu.py"
TAIL = 4000


class Check:
    """The running check: its settings, the environment the parts run in, and the report written after each part."""

    def __init__(self, args: argparse.Namespace, scratch: Path):
        self.args, self.scratch = args, scratch
        self.out = Path(args.out or os.environ.get("OUT") or REPO / ".gpu-check" / "results")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.log").write_text("")
        self.environment = gpu_check_env.Environment(args.python)
        self.started = time.monotonic()
        self.report = {"schema": "dlbench.gpu_check/1", "mode": args.mode,
                       "started": _now(), "finished": None, "checkout": _checkout(), "budget_s": args.budget,
                       "time_limits_s": args.limits, "environment": None, "device": None, "parts": []}

    def budget_left(self) -> float:
        return self.args.budget - (time.monotonic() - self.started)

    def part_env(self) -> dict[str, str]:
        variables = {**self.environment.process_env(), "PYTHONUNBUFFERED": "1"}
        if self.args.cpu_dry_run:
            variables["CUDA_VISIBLE_DEVICES"] = ""
        return variables

    def run(self, name: str, command: list[str], limit: float) -> dict:
        """Run one part's command in its own process group, stopped at `limit` seconds; its output goes to the log."""
        output_path = self.scratch / f"{name}.out"
        started = time.monotonic()
        with open(output_path, "w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO,
                                       env=self.part_env(), start_new_session=True)
            try:
                code = process.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                _stop(process)
                code = None
        text = output_path.read_text(errors="replace")
        with open(self.out / "gpu_check.log", "a") as log:
            log.write(f"===== {name}: {' '.join(command)}\n{text}\n")
        return {"exit_status": code, "seconds": round(time.monotonic() - started, 1), "output_tail": text[-TAIL:],
                "command": command}

    def write(self) -> None:
        self.report["finished"] = _now()
        _write_atomically(self.out / "gpu_check.json", json.dumps(self.report, indent=1, default=str) + "\n")
        _write_atomically(self.out / "gpu_check.txt", summary(self.report))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _checkout() -> dict:
    def git(*args: str) -> str | None:
        try:
            completed = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return completed.stdout.strip() if completed.returncode == 0 else None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(status) if status is not None else None}


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the part's whole process group (a benchmark's own workers too), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _outcome(ran: dict, limit: float) -> dict:
    if ran["exit_status"] is None:
        return {"status": "timeout", "error": f"stopped at its time limit of {limit:.0f} s"}
    if ran["exit_status"] != 0:
        return {"status": "failed", "error": _last_line(ran["output_tail"])}
    return {"status": "ok"}


def part_install(check: Check, limit: float) -> dict:
    args = check.args
    check.environment = gpu_check_env.prepare(REPO, args.python, Path(args.env_dir), Path(args.wheelhouse), limit,
                                              args.reinstall)
    described = check.report["environment"] = check.environment.describe()
    missing = described["missing_requirements"]
    headline = f"{described['how']}, {described['python']}" + (f"; missing: {', '.join(missing)}" if missing else "")
    if not check.environment.ready:
        return {"status": "failed", "error": "no way of installing ran this checkout; the parts run with "
                f"{described['python']} as it is", "headline": headline}
    if missing:  # the parts still run: whatever does not need the missing ones is measured
        return {"status": "failed", "error": f"requirements still missing: {', '.join(missing)} (no wheel for them in "
                f"{args.wheelhouse}: run scripts/gpu_check.sh --fetch-wheels where an index is reachable)",
                "headline": headline}
    return {"status": "ok", "headline": headline}


def part_device(check: Check, limit: float) -> dict:
    result_path = check.scratch / "device.json"
    ran = check.run("device", [check.environment.python, str(WORKER), "device", str(result_path)], limit)
    outcome = _outcome(ran, limit)
    if result_path.exists():
        facts = check.report["device"] = json.loads(result_path.read_text())
        outcome["headline"] = describe_device(facts)
        if not facts["cuda_available"] and not check.args.cpu_dry_run:
            outcome.update(status="failed", error="no CUDA device; the parts run on the CPU at full size (within "
                                                  "their limits); --cpu-dry-run runs them at --quick sizes")
    return {**ran, **outcome}


def describe_device(facts: dict) -> str:
    versions = f"torch {facts['torch']}, CUDA {facts['cuda']}, cuDNN {facts['cudnn']}"
    if not facts["gpus"]:
        return f"CPU ({facts['cpu_count']} cores, {facts['cpu_capability']}), no CUDA device; {versions}"
    gpus = "; ".join(f"{gpu['name']} ({gpu['memory_gib']} GiB, {gpu['free_gib']} free, sm {gpu['capability']}, "
                     f"{gpu['multiprocessors']} SMs)" for gpu in facts["gpus"])
    return f"{gpus}; {versions}, driver {facts['driver']}"


def junit_results(path: Path) -> dict:
    """Every test case's outcome (passed, failed, error, skipped) with its first message line, and the counts."""
    cases = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                outcome, message = name, _last_line(node.get("message") or node.text or "")
                break
        cases.append({"test": case.get("name"), "outcome": outcome, "seconds": float(case.get("time") or 0),
                      "message": message})
    counts = {outcome: sum(case["outcome"] == outcome for case in cases)
              for outcome in ("passed", "failed", "error", "skipped")}
    return {"counts": counts, "cases": cases}


def part_gpu_tests(check: Check, limit: float) -> dict:
    junit = check.scratch / "gpu_tests.xml"
    ran = check.run("gpu_tests", [check.environment.python, "-m", "pytest", "-m", "gpu", "-q", "-p",
                                  "no:cacheprovider", f"--junitxml={junit}", GPU_TESTS], limit)
    outcome = _outcome(ran, limit)
    if junit.exists():
        tests = junit_results(junit)
        outcome["tests"] = tests
        outcome["headline"] = ", ".join(f"{count} {name}" for name, count in tests["counts"].items() if count)
        if ran["exit_status"] not in (None, 0):
            outcome["error"] = outcome["headline"]
    return {**ran, **outcome}


def part_benchmark(check: Check, name: str, limit: float) -> dict:
    rows_path = check.scratch / f"{name}.jsonl"
    quick = ["--quick"] if check.args.cpu_dry_run else []
    ran = check.run(name, [check.environment.python, str(WORKER), "bench", name, str(rows_path), *quick], limit)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    if ran["exit_status"] == NOT_AVAILABLE:
        outcome = {"status": "not available", "error": "not available in this checkout"}
    elif ran["exit_status"] == PLUGIN_FAILED:
        outcome = {"status": "failed", "error": _last_line(ran["output_tail"])}
    else:
        outcome = _outcome(ran, limit)
    return {**ran, **outcome, "rows": rows, "headline": f"{len(rows)} rows" if rows else ""}


def run_part(check: Check, name: str) -> dict:
    """One part within min(its limit, the budget left); a driver error is recorded as the part's failure."""
    own, left = check.args.limits[name], check.budget_left()
    limit = min(own, left)
    if left < min(own, MIN_PART_SECONDS):
        return {"name": name, "status": "skipped", "error": "the check's time budget was spent", "limit_s": 0}
    started = time.monotonic()
    try:
        if name == "install":
            result = part_install(check, limit)
        elif name == "device":
            result = part_device(check, limit)
        elif name == "gpu_tests":
            result = part_gpu_tests(check, limit)
        else:
            result = part_benchmark(check, name, limit)
    except Exception as exc:  # noqa: BLE001 - the check records what broke and goes on to the next part
        result = {"status": "failed", "error": f"driver error: {type(exc).__name__}: {exc}",
                  "output_tail": traceback.format_exc()[-TAIL:]}
    result.setdefault("seconds", round(time.monotonic() - started, 1))
    return {"name": name, "limit_s": round(limit), **result}


def _table(headers: list[str], rows: list[list]) -> list[str]:
    cells = [[str(value) for value in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _ratio(value) -> str:
    return f"{value:.2f}x" if isinstance(value, (int, float)) else str(value)


def summary(report: dict) -> str:
    """The readable summary: what ran where, each part's outcome, the tests, and every benchmark row."""
    checkout = report["checkout"]
    lines = [f"dlbench GPU check ({report['mode']}), {report['started']} to {report['finished']}, checkout "
             f"{checkout['commit']}{' (uncommitted changes)' if checkout['dirty'] else ''}"]
    if report["device"]:
        lines.append(f"device: {describe_device(report['device'])}")
    if report["environment"]:
        environment = report["environment"]
        missing = ", ".join(environment["missing_requirements"]) or "none"
        lines.append(f"python: {environment['python']} ({environment['how']}); requirements missing: {missing}")
    lines += ["", *_table(["part", "status", "seconds", "limit", "result"],
                          [[part["name"], part["status"], part.get("seconds", ""), part["limit_s"],
                            part.get("error") or part.get("headline", "")] for part in report["parts"]])]
    for part in report["parts"]:
        if part.get("tests"):
            lines += ["", f"{part['name']}:", *[f"  {case['outcome']:8} {case['test']} ({case['seconds']:.1f} s)"
                                                 f"{': ' + case['message'] if case['message'] else ''}"
                                                 for case in part["tests"]["cases"]]]
        if part.get("rows"):
            lines += ["", f"{part['name']}:", *["  " + line for line in _table(
                ["benchmark", "ours_s", "baseline_s", "speedup", "note"],
                [[row.get("name", "?"), _number(row.get("seconds")), _number(row.get("baseline_seconds")),
                  _ratio(row.get("ratio")), row.get("note", "")] for row in part["rows"]])]]
    return "\n".join(lines) + "\n"


def _limit(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in TIME_LIMITS or not seconds.replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected PART=SECONDS with PART one of {', '.join(TIME_LIMITS)}")
    return name, float(seconds)


def _parts(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TIME_LIMITS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown part {unknown[0] if unknown else text!r}; expected some of "
                                         f"{', '.join(TIME_LIMITS)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.sh", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", help="output folder (default: $OUT, else .gpu-check/results)")
    parser.add_argument("--cpu-dry-run", action="store_true", help="hide any GPU; benchmarks at --quick sizes")
    parser.add_argument("--parts", type=_parts, default=list(TIME_LIMITS), help="comma-separated subset, in order")
    parser.add_argument("--limit", type=_limit, action="append", default=[], metavar="PART=SECONDS",
                        help="another time limit for one part")
    parser.add_argument("--budget", type=float, help=f"seconds for all parts (default {BUDGET})")
    parser.add_argument("--python", default=sys.executable, help="the machine's interpreter (default: this one)")
    parser.add_argument("--env-dir", default=str(REPO / ".gpu-check" / "env"), help="where a venv is made")
    parser.add_argument("--wheelhouse", default=str(REPO / ".gpu-check" / "wheels"),
                        help="wheels of missing requirements, installed with no index")
    parser.add_argument("--reinstall", action="store_true", help="install into a fresh venv, reusing nothing")
    parser.add_argument("--fetch-wheels", action="store_true",
                        help="download pure-Python wheels of the requirements into the wheelhouse, and stop")
    args = parser.parse_args(argv)
    args.mode = "cpu dry run" if args.cpu_dry_run else "gpu"
    column = 1 if args.cpu_dry_run else 0
    args.limits = {**{name: limits[column] for name, limits in TIME_LIMITS.items()}, **dict(args.limit)}
    args.budget = args.budget or BUDGET[args.mode]
    return args


def fetch_wheels(args: argparse.Namespace) -> int:
    """Pure-Python wheels of every requirement that has one (as setup.cfg pins it), for a GPU machine that reaches no
    index; the others are the machine's own (torch, numpy, ...)."""
    fetched = []
    for specifier in gpu_check_env.requirement_specifiers(REPO):
        completed = subprocess.run([args.python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                    "--platform", "any", "--dest", args.wheelhouse, specifier],
                                   capture_output=True, text=True)
        fetched += [specifier] if completed.returncode == 0 else []
    print(f"{args.wheelhouse}: {', '.join(fetched) or 'nothing'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(args)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        check = Check(args, Path(scratch))
        print(f"dlbench GPU check ({check.report['mode']}): writing {check.out}/gpu_check.json and gpu_check.txt",
              flush=True)
        for name in args.parts:
            part = run_part(check, name)
            check.report["parts"].append(part)
            check.write()
            result = part.get("error") or part.get("headline")
            print(f"[{time.monotonic() - check.started:6.1f} s] {name}: {part['status']}"
                  f"{' - ' + result if result else ''}", flush=True)
    print()
    print(summary(check.report), end="")
    return 0 if all(part["status"] in ("ok", "not available") for part in check.report["parts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
