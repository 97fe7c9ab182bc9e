"""The `dlbench` command line. User mistakes print one line and exit 2 (`--debug`: traceback)."""
from __future__ import annotations

import argparse
import fnmatch
import importlib
import inspect
import signal
import sys
import traceback
from pathlib import Path
from typing import Sequence

import gin
from dlbench import __version__
from dlbench.errors import DlbenchError

# Core modules that contribute their own subcommands through add_commands(subparsers).
COMMAND_MODULES = ("dlbench.datasets.commands", "dlbench.metrics.commands")


class CommandLineError(DlbenchError):
    """A command line argparse could not accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandLineError(f"{message} (see '{self.prog} --help')")


def _cmd_run(args) -> int:
    from dlbench.runner import run_experiment
    from dlbench.summary import summarize

    result = run_experiment(args.configs, args.gin_param, out_dir=args.out, device=args.device,
                            seed=args.seed, progress=not args.quiet)
    record = result.record
    if result.reused:
        print(f"already finished: {result.run_dir} (same config and seed); "
              "use another --out to run it again")
    dataset = record["dataset"]
    print(f"run {record['run_id']}: model {record['model']['name']}, dataset {dataset['name']} "
          f"(source: {dataset['source']}), seed {record['seed']}, "
          f"device {record['environment']['device']}, "
          f"{record['timings']['total_seconds']:.1f} s")
    print(summarize(record, args.columns))
    print(f"record: {result.run_dir / 'record.json'}")
    if args.plot:
        _draw(result.run_dir, None)
    return 0


def _cmd_plugins(args) -> int:
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    rows = []
    for info in get_plugins().infos:
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.provides.items())
        rows.append([info.name, info.distribution, info.version, ", ".join(info.hooks) or "-",
                     f"FAILED: {info.error}" if info.error else provides or "-"])
    print(format_table(["plugin", "distribution", "version", "hooks", "provides"], rows))
    return 0


def _configurable_rows(pattern: str) -> list[list[str]]:
    from dlbench.config import CORE_CONFIGURABLES
    from dlbench.plugins import CONFIGURABLE_KINDS, get_plugins

    plugins = get_plugins()
    factories = [(name, "core", function) for name, function in CORE_CONFIGURABLES.items()]
    for kind in CONFIGURABLE_KINDS:
        factories += [(r.name, kind.rstrip("s"), r.provided)
                      for r in plugins.registries[kind].entries()]
    rows = []
    for name, kind, factory in sorted(factories, key=lambda entry: entry[0]):
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        core_function = getattr(factory, "__wrapped__", factory)  # under gin's decorator
        for parameter in inspect.signature(core_function).parameters.values():
            # source and device are passed by the core, not bound in gin
            passed_by_core = kind == "dataset" and parameter.name in ("source", "device")
            if passed_by_core or parameter.kind in (parameter.VAR_POSITIONAL,
                                                    parameter.VAR_KEYWORD):
                continue
            required = parameter.default is inspect.Parameter.empty or \
                parameter.default is gin.REQUIRED
            rows.append([f"{name}.{parameter.name}", kind,
                         "REQUIRED" if required else repr(parameter.default)])
    return rows


def _cmd_list(args) -> int:
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    if args.kind == "configurables":
        print(format_table(["binding", "kind", "default"], _configurable_rows(args.pattern)))
        return 0
    entries = get_plugins().registries[args.kind].entries(args.pattern)
    print(format_table(["name", "plugin", "description"],
                       [[e.name, e.plugin, e.doc] for e in entries]))
    return 0


def _draw(run_dir: Path, out_dir: Path | None) -> None:
    from dlbench.plugins import get_plugins
    from dlbench.records import read_record

    model_name = read_record(run_dir)["model"]["name"]
    plot = get_plugins().plots.get(model_name).factory
    for path in plot(Path(run_dir), Path(out_dir) if out_dir else Path(run_dir) / "figures"):
        print(f"figure: {path}")


def _cmd_plot(args) -> int:
    _draw(Path(args.run_dir), args.out)
    return 0


def _cmd_bench(args) -> int:
    from dlbench.plugins import get_plugins
    from dlbench.summary import format_table

    registry = get_plugins().benchmarks
    names = sorted({n for pattern in args.names or ["*"] for n in registry.names(pattern)})
    if not names:
        registry.get(args.names[0])  # raises, listing what there is
    rows = []
    for name in names:
        for result in registry.get(name).factory(quick=args.quick):
            rows.append([result["name"], result["seconds"], result["baseline_seconds"],
                         f"{result['ratio']:.1f}x", result.get("note", "")])
            print(format_table(["benchmark", "ours_s", "baseline_s", "speedup", "note"],
                               rows[-1:]).split("\n", 2)[-1], flush=True)
    print()
    print(format_table(["benchmark", "ours_s", "baseline_s", "speedup", "note"], rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlbench", description="Benchmark harness for disentangled "
                     "representation learning.")
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser("run", help="run the experiment of stacked gin files")
    run.add_argument("configs", nargs="+", metavar="CONFIG.gin")
    run.add_argument("-p", "--gin-param", action="append", default=[], metavar="BINDING",
                     help="a gin binding such as 'vae.beta = 4.0'; applied after the files")
    run.add_argument("--out", default="runs", help="directory of run directories (default: runs)")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    run.add_argument("--seed", type=int, help="override model.random_seed")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--columns", nargs="*", help="scores to show in the summary table")
    run.add_argument("--plot", action="store_true", help="draw the run's figures when it ends")
    run.set_defaults(handler=_cmd_run)

    plugins = commands.add_parser("plugins", help="installed plugins, versions, hooks, failures")
    plugins.set_defaults(handler=_cmd_plugins)

    listing = commands.add_parser("list", help="registered names with one-line descriptions")
    listing.add_argument("kind", choices=["models", "datasets", "metrics", "configurables"])
    listing.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'beta*'")
    listing.set_defaults(handler=_cmd_list)

    plot = commands.add_parser("plot", help="draw the figures of a finished run")
    plot.add_argument("run_dir")
    plot.add_argument("--out", help="directory for the PNG files (default: RUN_DIR/figures)")
    plot.set_defaults(handler=_cmd_plot)

    bench = commands.add_parser("bench", help="speed against naive baselines, as ratios")
    bench.add_argument("names", nargs="*", help="benchmark names or wildcards (default: all)")
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    bench.set_defaults(handler=_cmd_bench)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except DlbenchError as exc:
        if debug:
            traceback.print_exc()
        message = str(exc).strip().split("\n", 1)[0]
        print(f"dlbench: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def entry_point() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `dlbench list ... | head` ends quietly
    sys.exit(main())
