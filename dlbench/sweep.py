"""Studies: `dlbench sweep` expands grids of gin bindings into runs and has an executor run them.

A study is gin files and bindings, as for `dlbench run`, plus grid axes (`--grid 'encoder.num_latent=[10, 15]'`
or `# sweep: encoder.num_latent = [10, 15]` lines in the study's gin files): their cartesian product is the runs.
Solution axes (β, λ, seeds) stay inside one run, which trains them as one stack; `--split AXIS=N` cuts each run's
stack into runs of at most N values of that axis, through the model's `axis_parameters`.

Each planned run gets an id hashing its parsed config (the gin files' resolved bindings and its own), so the id
does not depend on the order of files, axes or bindings, nor on the machine. Where a run lands is run_experiment's
choice (its id hashes the fit-determining config), and so is skipping it: a finished record is reused, a
`.partial` directory resumed, so an interrupted sweep resumes by running the same command again.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import time
import tokenize
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from dlbench import errors
from dlbench.errors import ConfigError, DlbenchError
from dlbench.executors import (
    FAILED,
    REUSED,
    TRAINED,
    DaskExecutor,
    Executor,
    InProcessExecutor,
    ProcessExecutor,
    RunOutcome,
    RunRequest,
    visible_gpus,
)
from dlbench.plugins import DISABLE_ENV

if TYPE_CHECKING:
    from gin.config_parser import BindingStatement

    from dlbench.config import Experiment

# A study's own lines in its gin files: comments, so that `dlbench run` reads the same file as one run.
_STUDY_LINE = re.compile(r"^\s*#\s*sweep(?P<split>-split)?:\s*(?P<body>.*?)\s*$")
_SPLIT = re.compile(r"^\s*(?P<axis>\w+)\s*=\s*(?P<size>\d+)\s*$")
GRID_EXPECTED = "TARGET=[value, ...]: a gin binding target (configurable.parameter) = a non-empty gin list"
SPLIT_EXPECTED = "AXIS=N: a solution axis of the model and an integer N >= 1"
GRID_ONCE = "expected one grid axis per target, all its values in one list"
SPLIT_ONCE = "expected one split per axis"


@dataclass(frozen=True)
class GridAxis:
    target: str  # [scope/]configurable.parameter, or a macro name
    values: tuple[str, ...]  # each value as gin text


@dataclass(frozen=True)
class PlannedRun:
    plan_id: str
    config_files: tuple[str, ...]  # absolute paths
    bindings: tuple[str, ...]  # the study's -p bindings, then this run's grid bindings, then its split bindings
    settings: tuple[str, ...]  # what this run varies, for the plan and the progress lines
    model: str
    dataset: str


def _parse_one_binding(text: str) -> BindingStatement | None:
    """The one binding statement of gin `text`, parsed without executing or importing anything; None otherwise."""
    import gin
    from gin import config_parser

    try:
        statements = list(config_parser.ConfigParser(text, gin.config.ParserDelegate(skip_unknown=True)))
    except (SyntaxError, ValueError, TypeError, KeyError, tokenize.TokenError):
        return None
    if len(statements) != 1 or not isinstance(statements[0], config_parser.BindingStatement):
        return None
    return statements[0]


def _target(statement: BindingStatement) -> str:
    scope = f"{statement.scope}/" if statement.scope else ""
    return f"{scope}{statement.selector}.{statement.arg_name}" if statement.arg_name else f"{scope}{statement.selector}"


def _gin_text(value) -> str | None:
    """`value` written as gin that parses back to it (literals, macros, references); None when there is none."""
    text = repr(value)
    reparsed = _parse_one_binding(f"probe.value = {text}")
    return text if reparsed is not None and repr(reparsed.value) == text else None


def parse_grid(text: str, where: str | None = None) -> GridAxis:
    """A grid axis from `TARGET=[v1, v2, ...]`; anything else is refused in one line naming `where` (the option or
    the file line it came from)."""
    where = where or f"--grid {text!r}"
    refused = ConfigError(f"{where} is not accepted; expected {GRID_EXPECTED}")
    target_text, equals, literal = text.partition("=")
    if not equals or not target_text.strip() or not literal.strip():
        raise refused
    statement = _parse_one_binding(f"{target_text.strip()} = {literal.strip()}")
    if statement is None or not isinstance(statement.value, (list, tuple)) or not statement.value:
        raise refused
    values = tuple(_gin_text(value) for value in statement.value)
    if None in values:
        raise ConfigError(f"{where} is not accepted; expected literal values (numbers, strings, lists, %MACROS or "
                          "@registered references)")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where} is not accepted; expected each value once")
    return GridAxis(_target(statement), values)


def parse_split(text: str, where: str | None = None) -> tuple[str, int]:
    matched = _SPLIT.match(text)
    if not matched or int(matched["size"]) < 1:
        raise ConfigError(f"{where or f'--split {text!r}'} is not accepted; expected {SPLIT_EXPECTED}")
    return matched["axis"], int(matched["size"])


def read_study_lines(config_file: str | Path) -> tuple[list[GridAxis], dict[str, int]]:
    """The grid axes (`# sweep: TARGET = [...]`) and splits (`# sweep-split: AXIS = N`) of a study's gin file, read
    as text: nothing in the file is executed, and files it includes are not searched."""
    path = Path(config_file)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason}); give a .gin file") from exc
    grids: dict[str, GridAxis] = {}
    splits: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        found = _STUDY_LINE.match(line)
        if not found:
            continue
        where = f"{path}, line {number}: {line.strip()!r}"
        if found["split"]:
            _add_once(splits, *parse_split(found["body"], where), where, SPLIT_ONCE)
        else:
            axis = parse_grid(found["body"], where)
            _add_once(grids, axis.target, axis, where, GRID_ONCE)
    return list(grids.values()), splits


def _add_once(found: dict, key: str, value, where: str, expected: str) -> None:
    """found[key] = value, refusing a second value for the same key (which would silently drop the first)."""
    if key in found:
        raise ConfigError(f"{where} is not accepted: {key} was given earlier; {expected}")
    found[key] = value


def _binding_targets(bindings: Iterable[str]) -> set[str]:
    targets = set()
    for binding in bindings:
        statement = _parse_one_binding(binding)
        if statement is not None:
            targets.add(_target(statement))
    return targets


def study_axes(config_files: Sequence[str | Path], bindings: Sequence[str], grids: Sequence[str],
               splits: Sequence[str]) -> tuple[list[GridAxis], dict[str, int]]:
    """The study's grid axes and splits: its gin files' in order, then the command line's, a later axis of the same
    target (or split of the same axis) replacing an earlier one."""
    axes: dict[str, GridAxis] = {}
    split_sizes: dict[str, int] = {}
    for config_file in config_files:
        if not Path(config_file).is_file():
            raise ConfigError(f"config file {str(config_file)!r} not found; give the path of a .gin file")
        file_grids, file_splits = read_study_lines(config_file)
        axes.update((axis.target, axis) for axis in file_grids)
        split_sizes.update(file_splits)
    command_line_axes: dict[str, GridAxis] = {}
    for text in grids:
        axis = parse_grid(text)
        _add_once(command_line_axes, axis.target, axis, f"--grid {text!r}", GRID_ONCE)
    axes.update(command_line_axes)
    command_line_splits: dict[str, int] = {}
    for text in splits:
        _add_once(command_line_splits, *parse_split(text), f"--split {text!r}", SPLIT_ONCE)
    split_sizes.update(command_line_splits)
    overlap = sorted(_binding_targets(bindings) & set(axes))
    if overlap:
        raise ConfigError(f"-p binds {overlap[0]}, which is also a grid axis of the study; drop one (a single value "
                          f"is a grid of one: --grid '{overlap[0]}=[value]')")
    return list(axes.values()), split_sizes


def _split_choices(plugins, experiment: Experiment, splits: dict[str, int]) -> list[list[tuple[str, str]]]:
    """For each split axis, the (setting, binding) of each of its chunks; an axis held in one chunk is left as is."""
    from dlbench.evaluation import build_model

    model = build_model(plugins, experiment)
    declared = dict(getattr(model, "axis_parameters", None) or {})
    choices = []
    for axis, size in splits.items():
        if axis not in declared:
            expected = (f"an axis model {experiment.model_name!r} declares ({', '.join(declared)})" if declared else
                        f"nothing: model {experiment.model_name!r} declares no axis_parameters to split along")
            raise ConfigError(f"--split {axis}={size} is not accepted; expected {expected}")
        values = [value.item() if hasattr(value, "item") else value for value in model.solution_axes[axis]]
        chunks = [values[start:start + size] for start in range(0, len(values), size)]
        if len(chunks) == 1:
            choices.append([("", "")])
        else:
            choices.append([(f"{axis}={chunk!r}", f"{experiment.model_name}.{declared[axis]} = {chunk!r}")
                            for chunk in chunks])
    return choices


def plan_study(config_files: Sequence[str | Path], bindings: Sequence[str] = (), grids: Sequence[str] = (),
               splits: Sequence[str] = ()) -> list[PlannedRun]:
    """Every run of the study, each parsed and checked now (its config, its model and dataset names, its split), so a
    mistake in any run is refused before the first one starts. Runs whose config is identical are planned once."""
    import gin
    from dlbench import config
    from dlbench.plugins import get_plugins

    files = tuple(str(Path(f).resolve()) for f in config_files)
    axes, split_sizes = study_axes(files, bindings, grids, splits)
    plugins = get_plugins()
    planned: dict[str, PlannedRun] = {}
    for point in itertools.product(*(axis.values for axis in axes)):
        grid_bindings = [f"{axis.target} = {value}" for axis, value in zip(axes, point)]
        grid_settings = [f"{axis.target}={value}" for axis, value in zip(axes, point)]
        where = "; ".join(grid_settings)
        try:
            config.parse(files, [*bindings, *grid_bindings])
            experiment = config.read_experiment()
            plugins.models.get(experiment.model_name)
            plugins.datasets.get(experiment.dataset_name)
            chunk_choices = _split_choices(plugins, experiment, split_sizes) if split_sizes else []
            for chunks in itertools.product(*chunk_choices):
                split_settings = [setting for setting, _ in chunks if setting]
                run_bindings = (*bindings, *grid_bindings, *(binding for _, binding in chunks if binding))
                if split_settings:
                    config.parse(files, run_bindings)
                plan_id = config.identity_hash({"study_run": gin.config_str()})
                planned.setdefault(plan_id, PlannedRun(plan_id, files, run_bindings,
                                                       (*grid_settings, *split_settings), experiment.model_name,
                                                       experiment.dataset_name))
        except DlbenchError as exc:
            if not where:
                raise
            # gin re-raises errors from inside a configurable as a look-alike subclass; re-raise as the real class
            error_type = next(kind for kind in type(exc).__mro__ if getattr(errors, kind.__name__, None) is kind)
            raise error_type(f"study run {where}: {str(exc).splitlines()[0]}") from exc
    return list(planned.values())


@dataclass
class SweepResult:
    outcomes: list[RunOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def exit_status(self) -> int:
        return 2 if self.count(FAILED) else 0


def _outcome_line(done: int, total: int, run: PlannedRun, outcome: RunOutcome, show_worker: bool) -> str:
    what = f"[{done}/{total}] {outcome.status:<7}  {run.plan_id}  {run.model} on {run.dataset}"
    if run.settings:
        what += f"  {' '.join(run.settings)}"
    if outcome.status == FAILED:
        return f"{what}: {outcome.message}"
    parts = [what, f"fit {outcome.fit_seconds:.1f} s"]
    if outcome.headline:
        label, value = outcome.headline
        parts.append(f"{label} {value:.4g}")
    if outcome.rescored:
        parts.append(f"scored {', '.join(outcome.rescored)} on its saved fit")
    parts.append(f"run {outcome.run_id}")
    if show_worker:
        parts.append(f"on {outcome.worker}")
    if outcome.message:
        parts.append(f"({outcome.message})")
    return "  ".join(parts)


def run_sweep(runs: Sequence[PlannedRun], executor: Executor | None = None, *, out_dir: str | Path = "runs",
              device: str = "auto", wait: bool = False, progress: bool = True, report: bool = True) -> SweepResult:
    """Run the planned runs with `executor` (default: in this process), printing a line per finished run (when
    `report`) under a progress bar with the time left (when `progress` and on a terminal), then a summary table."""
    from tqdm import tqdm

    from dlbench.runner import check_out_dir
    from dlbench.summary import format_table

    executor = executor or InProcessExecutor()
    out = check_out_dir(out_dir).resolve()
    requests = [RunRequest(run.plan_id, run.config_files, run.bindings, str(out), device, wait,
                           os.environ.get(DISABLE_ENV, "")) for run in runs]
    by_id = {run.plan_id: run for run in runs}
    result = SweepResult()
    started = time.perf_counter()
    bar = tqdm(total=len(runs), unit="run", desc="sweep", disable=None if progress else True, file=sys.stderr)
    try:
        with closing(executor.run(requests)) as finished:
            for outcome in finished:
                result.outcomes.append(outcome)
                bar.update(1)
                bar.set_postfix(trained=result.count(TRAINED), reused=result.count(REUSED),
                                failed=result.count(FAILED))
                if report:
                    line = _outcome_line(len(result.outcomes), len(runs), by_id[outcome.plan_id], outcome,
                                         show_worker=not isinstance(executor, InProcessExecutor))
                    bar.write(line, file=sys.stdout)
    finally:
        bar.close()
    result.seconds = time.perf_counter() - started
    if report:
        fit_seconds = sum(outcome.fit_seconds or 0.0 for outcome in result.outcomes if outcome.status == TRAINED)
        print(format_table(["runs", TRAINED, REUSED, FAILED, "fit_s (trained)", "wall_s"],
                           [[len(result.outcomes), result.count(TRAINED), result.count(REUSED), result.count(FAILED),
                             round(fit_seconds, 1), round(result.seconds, 1)]]))
        if result.count(FAILED):
            print(f"{result.count(FAILED)} run(s) failed (lines above); run the same command again to retry them: "
                  "finished runs are reused")
    return result


def make_executor(kind: str = "local", workers: int | None = None, scheduler: str | None = None,
                  device: str = "auto") -> Executor:
    """The executor the command line asks for; contradicting options are refused in one line."""
    if kind == "dask":
        if workers is not None:
            raise ConfigError(f"--workers {workers} is not accepted with --executor dask; expected the cluster's "
                              "workers (start them with dask-worker or dask-jobqueue)")
        if not scheduler:
            raise ConfigError("--executor dask needs --scheduler ADDRESS, e.g. tcp://127.0.0.1:8786")
        return DaskExecutor(scheduler)
    if kind != "local":
        raise ConfigError(f"--executor {kind!r} is not accepted; expected local or dask")
    if scheduler is not None:
        raise ConfigError(f"--scheduler {scheduler!r} is not accepted without --executor dask")
    from dlbench.evaluation import resolve_device

    resolve_device(device)  # refused here, before any run, when this machine cannot give it
    if workers is None:
        return InProcessExecutor()
    gpus = visible_gpus() if device in ("auto", "cuda") else []
    return ProcessExecutor(workers, gpus if len(gpus) > 1 else [])


def _print_plan(runs: Sequence[PlannedRun], executor: Executor, out_dir: str) -> None:
    from dlbench.summary import format_table

    print(f"study: {len(runs)} run{'s' if len(runs) != 1 else ''} into {out_dir}, {executor.description}")
    print(format_table(["id", "model", "dataset", "settings"],
                       [[run.plan_id, run.model, run.dataset, " ".join(run.settings) or "-"] for run in runs]))


def _cmd_sweep(args) -> int:
    executor = make_executor(args.executor, args.workers, args.scheduler, args.device)
    runs = plan_study(args.configs, args.gin_param, args.grid, args.split)
    _print_plan(runs, executor, args.out)
    if args.dry_run:
        return 0
    return run_sweep(runs, executor, out_dir=args.out, device=args.device, wait=args.wait,
                     progress=not args.quiet).exit_status


def add_commands(subparsers) -> None:
    """Add `dlbench sweep` (for a plugin's `register_commands` hook)."""
    sweep = subparsers.add_parser(
        "sweep", help="run a study: the cartesian product of grid axes, in-process, in local worker processes or "
                      "on a Dask cluster; finished runs are reused, so rerunning resumes it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Grid axes may also be written in the study's gin files as comment lines:\n"
               "  # sweep: dataset.name = [\"dsprites\", \"shapes3d\"]\n"
               "  # sweep-split: beta = 1")
    sweep.add_argument("configs", nargs="+", metavar="CONFIG.gin")
    sweep.add_argument("--grid", action="append", default=[], metavar="TARGET=[...]",
                       help="a grid axis, e.g. 'encoder.num_latent=[10, 15]'; the runs are the product of the axes")
    sweep.add_argument("--split", action="append", default=[], metavar="AXIS=N",
                       help="cut each run's stack into runs of at most N values of a solution axis, e.g. beta=1")
    sweep.add_argument("-p", "--gin-param", action="append", default=[], metavar="BINDING",
                       help="a gin binding applied to every run, after the files")
    sweep.add_argument("--out", default="runs", help="directory of run directories (default: runs)")
    sweep.add_argument("--executor", choices=["local", "dask"], default="local",
                       help="local: this machine (default); dask: a running Dask distributed scheduler")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="run in N local worker processes (default: one run after another in this process)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://127.0.0.1:8786")
    sweep.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sweep.add_argument("--wait", action="store_true", help="in this process: wait for a run another process holds "
                       "instead of reporting it failed (worker processes always wait)")
    sweep.add_argument("--dry-run", action="store_true", help="print the planned runs and stop")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_cmd_sweep)


BENCH_CONFIG = """
dataset.name = "linear_gaussian"
linear_gaussian.n = 12
linear_gaussian.s = 3
model.name = "linear_gaussian_vae"
linear_gaussian_vae.num_latent = 4
linear_gaussian_vae.betas = [1, 4]
linear_gaussian_vae.lambdas = [0, 2]
linear_gaussian_vae.solvers = ["fixed_point"]
linear_gaussian_vae.num_starts = 3
linear_gaussian_vae.max_half_steps = 600
"""


def bench_sweep(quick: bool) -> list[dict]:
    """Sweep throughput (runs per minute) of a small linear study with 2 local worker processes and with a local
    2-worker Dask cluster, against one run after another in this process, all measured in this call. Every run
    gets the same number of torch threads (a worker's share of the cores): tiny float64 solves slow down by orders
    of magnitude when more threads than that contend for busy cores, which would swamp what is measured here."""
    import torch
    from distributed import LocalCluster

    num_runs = 4 if quick else 6
    threads = max(1, (os.cpu_count() or 1) // 2)
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "study.gin"
        study.write_text(BENCH_CONFIG)
        runs = plan_study([study], grids=[f"linear_gaussian.seed={list(range(num_runs))}"])

        def timed(executor: Executor, name: str) -> float:
            started = time.perf_counter()
            result = run_sweep(runs, executor, out_dir=Path(folder) / name, device="cpu", progress=False,
                               report=False)
            assert result.count(TRAINED) == num_runs, [outcome.message for outcome in result.outcomes]
            return time.perf_counter() - started

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            baseline = timed(InProcessExecutor(), "in_process")
        finally:
            torch.set_num_threads(previous_threads)
        measured = [("2 local worker processes", timed(ProcessExecutor(2), "processes"),
                     "pool start-up (spawn, imports) counted")]
        cluster_started = time.perf_counter()
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None, env={"OMP_NUM_THREADS": str(threads)}) as cluster:
            cluster_seconds = time.perf_counter() - cluster_started
            measured.append(("Dask LocalCluster, 2 workers", timed(DaskExecutor(cluster.scheduler_address), "dask"),
                             f"cluster start {cluster_seconds:.1f} s not counted, workers' first imports counted"))
    per_minute = 60 * num_runs
    return [{"name": f"sweep of {num_runs} tiny linear runs, {name}", "seconds": seconds,
             "baseline_seconds": baseline, "ratio": baseline / seconds,
             "note": f"{per_minute / seconds:.0f} runs/min vs {per_minute / baseline:.0f} in-process; "
                     f"{os.cpu_count()} cores, {threads} torch thread(s) per run; {extra}"}
            for name, seconds, extra in measured]
