"""The `dlbench` command line. User mistakes print one line and exit 2 (`--debug`: traceback).

This module imports nothing heavy at load time: each command imports what it needs, so `dlbench
--help` answers at once. Plugins add their own subcommands through the `register_commands` hook.
"""
from __future__ import annotations

import argparse
import errno
import fnmatch
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import Sequence

from dlbench.errors import ConfigError, DlbenchError

# What would work instead, by the errno of a failed file operation on a path the user gave.
_OS_ERROR_HINTS = {
    errno.ENOSPC: "free some space or choose another location",
    errno.EDQUOT: "free some space or choose another location",
    errno.EACCES: "choose a location you can write to",
    errno.EPERM: "choose a location you can write to",
    errno.EROFS: "choose a writable file system",
    errno.ENOTDIR: "a part of that path is a file; choose a directory path",
    errno.EEXIST: "a part of that path is a file; choose a directory path",
    errno.EISDIR: "that is a directory; give a file path",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


class CommandLineError(ConfigError):
    """A command line argparse could not accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandLineError(f"{message} (see '{self.prog} --help')")


def _print_run_summary(result, columns) -> None:
    from dlbench.summary import summarize

    record = result.record
    dataset = record["dataset"]
    print(f"run {record['run_id']}: model {record['model']['name']}, dataset {dataset['name']} "
          f"(source: {dataset['source']}), seed {record['seed']}, device {record['environment']['device']}, "
          f"fit {record['timings']['fit_seconds']:.1f} s")
    print(summarize(record, columns))
    print(f"record: {result.run_dir / 'record.json'}")


def _cmd_run(args) -> int:
    from dlbench.runner import run_experiment

    result = run_experiment(args.configs, args.gin_param, out_dir=args.out, device=args.device,
                            seed=args.seed, progress=not args.quiet, wait=args.wait)
    if result.note:
        print(f"dlbench: {result.note}", file=sys.stderr)
    if result.reused:
        scored = f"; scored {', '.join(result.rescored)} on its saved fit" if result.rescored else ""
        print(f"already finished: {result.run_dir} (same fit){scored}; use another --out to train again")
    _print_run_summary(result, args.columns)
    if args.plot:
        _draw(result.run_dir, None)
    return 0


def _cmd_evaluate(args) -> int:
    import gin
    from dlbench import config, evaluation, records
    from dlbench.locking import RunLock
    from dlbench.plugins import get_plugins
    from dlbench.runner import RunResult
    from dlbench.summary import summarize

    if args.seed is not None:
        config.check_seed("--seed", args.seed)
    plugins = get_plugins()
    plugins.require_no_conflicts()
    allowed = set(plugins.metrics.names()) | {config.EVALUATION_CONFIGURABLE}
    configurables = evaluation.registered_configurables(plugins) | set(config.CORE_CONFIGURABLES)
    for binding in args.gin_param:
        for statement in config.binding_statements(binding, f"binding {binding!r}"):
            if statement.selector not in configurables:
                raise ConfigError(f"binding {binding!r} is not accepted: {statement.selector!r} is not a configurable "
                                  "(see 'dlbench list configurables'); evaluate takes metric bindings only (e.g. "
                                  "'mig.num_train = 5000')")
            if statement.selector not in allowed:
                raise ConfigError(f"binding {binding!r} is not accepted: it would change the trained model; evaluate "
                                  "takes metric bindings only (e.g. 'mig.num_train = 5000'); run the config again "
                                  "for another model")
    run_dir = Path(args.run_dir)
    with RunLock(run_dir.parent / f"{run_dir.name}.lock", f"run {run_dir.name}", wait=args.wait):
        record, model, dataset = evaluation.load_run(run_dir, device=args.device, bindings=args.gin_param)
        experiment = config.read_experiment()
        names = args.metrics or sorted(name for name in record["metrics"]
                                       if name not in (records.EXACT_METRICS, records.TRAINING_SCORES))
        if not names:
            raise ConfigError(f"{args.run_dir}: the run has no metrics yet; name some with --metrics")
        seed = experiment.evaluation_seed if args.seed is None else args.seed
        metrics = evaluation.build_metrics(plugins, names)
        results = evaluation.evaluate_metrics(model, dataset, metrics, seed)
        record = evaluation.merged_record(run_dir, results, gin.config_str())
        summarize(records.to_jsonable(record), args.columns)  # a bad --columns fails before the record changes
        written = records.write_record(run_dir, record)
    _print_run_summary(RunResult(run_dir, written, reused=True), args.columns)
    return 0


def _cmd_plugins(args) -> int:
    from dlbench.errors import DuplicateNameError
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    plugins = get_plugins()
    try:
        plugins.require_no_conflicts()
    except DuplicateNameError:
        pass  # shown below, on the plugins' rows and at the end; this command must still work
    rows = []
    for info in plugins.infos:
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.provides.items())
        status = "DISABLED" if info.disabled else f"FAILED: {info.error}" if info.error else provides or "-"
        rows.append([info.name, info.distribution, info.version, ", ".join(info.hooks) or "-", status])
    print(format_table(["plugin", "distribution", "version", "hooks", "provides"], rows))
    for conflict in plugins.conflicts:
        print(f"CONFLICT: {conflict}")
    return 0


def _configurable_rows(pattern: str) -> list[list[str]]:
    import inspect

    import gin
    from dlbench.config import CORE_CONFIGURABLES
    from dlbench.plugins import CONFIGURABLE_KINDS, get_plugins, parameter_descriptions

    plugins = get_plugins()
    factories = [(name, "core", function) for name, function in CORE_CONFIGURABLES.items()]
    for kind in CONFIGURABLE_KINDS:
        factories += [(r.name, kind.rstrip("s"), r.provided) for r in plugins.registries[kind].entries()]
    rows = []
    for name, kind, factory in sorted(factories, key=lambda entry: entry[0]):
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        core_function = getattr(factory, "__wrapped__", factory)  # under gin's decorator
        descriptions = parameter_descriptions(core_function)
        for parameter in inspect.signature(core_function).parameters.values():
            # source and device are passed by the core, not bound in gin
            passed_by_core = kind == "dataset" and parameter.name in ("source", "device")
            if passed_by_core or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            required = parameter.default is inspect.Parameter.empty or parameter.default is gin.REQUIRED
            rows.append([f"{name}.{parameter.name}", kind, descriptions.get(parameter.name, "-"),
                         "REQUIRED" if required else repr(parameter.default)])
    return rows


def _cmd_list(args) -> int:
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    if args.kind == "configurables":
        print(format_table(["binding", "kind", "description", "default"], _configurable_rows(args.pattern)))
        return 0
    entries = get_plugins().registries[args.kind].entries(args.pattern)
    print(format_table(["name", "plugin", "description"], [[e.name, e.plugin, e.doc] for e in entries]))
    return 0


def _draw(run_dir: Path, out_dir: Path | None, record_only: bool = False) -> None:
    """Draw a finished run's figures once everything they are drawn from is checked: the record, the figure
    directory, and the state file (bound to the record by its digest; a missing one only with `record_only`)."""
    from dlbench.evaluation import load_record
    from dlbench.plugins import get_plugins

    record = load_record(run_dir)
    model_name = record["model"]["name"]
    plots = get_plugins().plots
    if model_name not in plots:
        raise ConfigError(f"no plugin draws figures for model {model_name!r}; models with figures: "
                          f"{', '.join(plots.names()) or 'none'}")
    out = Path(out_dir) if out_dir else Path(run_dir) / "figures"
    _check_figure_dir(out)
    _check_state_for_figures(Path(run_dir), record, record_only)
    for path in plots.get(model_name).factory(Path(run_dir), out):
        print(f"figure: {path}")


def _check_figure_dir(out: Path) -> None:
    """Figures go to a directory of their own, never among run records."""
    from dlbench.records import RECORD_FILE

    expected = "expected a directory for the figures (default: RUN_DIR/figures)"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; {expected}")
    if (out / RECORD_FILE).is_file():
        raise ConfigError(f"--out {str(out)!r} is a run directory (it holds {RECORD_FILE}); {expected}")
    if out.is_dir() and any((child / RECORD_FILE).is_file() for child in out.iterdir()):
        raise ConfigError(f"--out {str(out)!r} is a results directory (it holds run directories); {expected}")


def _check_state_for_figures(run_dir: Path, record: dict, record_only: bool) -> None:
    """The state file the figures of the fitted model are drawn from: verified against the record's digest before
    any figure is drawn; a missing one refused unless only the figures the record holds are asked for."""
    from dlbench import records
    from dlbench.errors import RecordError

    state_file, record_file = run_dir / records.STATE_FILE, run_dir / records.RECORD_FILE
    if state_file.is_file():
        digest = records.bound_state_digest(record, str(record_file))
        if digest is not None:  # a record of the older schema: its model's plot says the state is unverified
            records.check_bound_state(state_file, record_file, digest)
    elif records.STATE_FILE in record["files"] and not record_only:
        raise RecordError(f"{state_file} is missing (its record lists it), so the figures drawn from the fitted model "
                          "would be left out; restore it, or add --record-only to draw only the figures drawn from "
                          "the record")


def _cmd_plot(args) -> int:
    _draw(Path(args.run_dir), args.out, args.record_only)
    return 0


def _cmd_bench(args) -> int:
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    registry = get_plugins().benchmarks
    names: set[str] = set()
    for pattern in args.names or ["*"]:  # every name is checked before any benchmark runs
        matched = registry.names(pattern)
        if not matched:
            registry.get(pattern)  # raises, naming it and listing what there is
        names.update(matched)
    headers = ["benchmark", "ours_s", "baseline_s", "speedup", "note"]
    rows = []
    for name in sorted(names):
        for result in registry.get(name).factory(quick=args.quick):
            rows.append([result["name"], result["seconds"], result["baseline_seconds"], f"{result['ratio']:.1f}x",
                         result.get("note", "")])
            print(format_table(headers, rows[-1:]).split("\n", 2)[-1], flush=True)
    print()
    print(format_table(headers, rows))
    return 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--columns", nargs="+", metavar="SCORE", help="scores to show in the summary table")
    parser.add_argument("--wait", action="store_true", help="wait for another process that holds the run, "
                        "instead of stopping with an error")


def build_parser() -> argparse.ArgumentParser:
    from dlbench.plugins import get_plugins
    from dlbench.version import distribution_version

    parser = _Parser(prog="dlbench", description="Benchmark harness for disentangled representation learning.")
    parser.add_argument("--version", action="version", version=f"dlbench {distribution_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load this plugin (also $DLBENCH_DISABLE_PLUGINS=name,...)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser("run", help="run the experiment of stacked gin files")
    run.add_argument("configs", nargs="+", metavar="CONFIG.gin")
    run.add_argument("-p", "--gin-param", action="append", default=[], metavar="BINDING",
                     help="a gin binding such as 'vae.beta = 4.0'; applied after the files")
    run.add_argument("--out", default="runs", help="directory of run directories (default: runs)")
    run.add_argument("--seed", type=int, help="override model.random_seed")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--plot", action="store_true", help="draw the run's figures when it ends")
    _add_run_options(run)
    run.set_defaults(handler=_cmd_run)

    evaluate = commands.add_parser("evaluate", help="score a finished run again (no retraining); replaced scores "
                                   "move to the record's metrics_history")
    evaluate.add_argument("run_dir", help="directory of a finished run (holds record.json and state.npz)")
    evaluate.add_argument("--metrics", nargs="+", metavar="NAME",
                          help="metrics to compute (default: those the record already has)")
    evaluate.add_argument("--seed", type=int, default=None,
                          help="metric seed (default: the run's evaluation.random_seed)")
    evaluate.add_argument("-p", "--gin-param", action="append", default=[], metavar="BINDING",
                          help="a metric binding applied over the run's config, e.g. 'mig.num_train = 5000'")
    _add_run_options(evaluate)
    evaluate.set_defaults(handler=_cmd_evaluate)

    plugins = commands.add_parser("plugins", help="installed plugins, versions, hooks, failures")
    plugins.set_defaults(handler=_cmd_plugins)

    listing = commands.add_parser("list", help="registered names with one-line descriptions")
    listing.add_argument("kind", choices=["models", "datasets", "metrics", "configurables"])
    listing.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'beta*'")
    listing.set_defaults(handler=_cmd_list)

    plot = commands.add_parser("plot", help="draw the figures of a finished run")
    plot.add_argument("run_dir")
    plot.add_argument("--out", help="directory for the PNG files (default: RUN_DIR/figures)")
    plot.add_argument("--record-only", action="store_true", help="where the run's state.npz is missing, draw only "
                      "the figures its record holds (without it, such a run is refused)")
    plot.set_defaults(handler=_cmd_plot)

    bench = commands.add_parser("bench", help="speed against naive baselines, as ratios")
    bench.add_argument("names", nargs="*", help="benchmark names or wildcards (default: all)")
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    bench.set_defaults(handler=_cmd_bench)

    get_plugins().add_commands(commands)
    return parser


def _disable_plugins(argv: Sequence[str]) -> None:
    """`--disable-plugin NAME` must act before the parser is built, since plugins add commands to it; it joins
    $DLBENCH_DISABLE_PLUGINS so that worker processes inherit it."""
    from dlbench.plugins import DISABLE_ENV

    names = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--disable-plugin"]
    names += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--disable-plugin=")]
    if names:
        current = [n for n in os.environ.get(DISABLE_ENV, "").split(",") if n]
        os.environ[DISABLE_ENV] = ",".join(dict.fromkeys(current + names))


def _os_error_line(exc: OSError) -> str:
    first_line = str(exc).splitlines()[0]
    # gin re-raises errors from inside a configurable as a copy that keeps only the message
    code = exc.errno if exc.errno is not None else int(next(iter(re.findall(r"\[Errno (\d+)\]", first_line)), -1))
    hint = _OS_ERROR_HINTS.get(code, "check the path and its permissions")
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}; {hint}"
    return f"{first_line}; {hint}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        _disable_plugins(argv)
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except DlbenchError as exc:
        if debug:
            traceback.print_exc()
        message = str(exc).strip().split("\n", 1)[0]
        print(f"dlbench: error: {message}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the user gave (or one under it) that the system refused
        if debug:
            traceback.print_exc()
        print(f"dlbench: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        if debug:
            traceback.print_exc()
        print("dlbench: error: out of memory; make the request smaller (fewer solutions, samples or a smaller "
              "batch)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def entry_point() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `dlbench list ... | head` ends quietly
    sys.exit(main())
