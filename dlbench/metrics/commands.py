"""`dlbench evaluate RUN_DIR [--metrics ...]`: score a finished run again without retraining."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from dlbench.errors import ConfigError


def _evaluate(args: argparse.Namespace) -> int:
    from dlbench.records import EXACT_METRICS, read_record, write_record
    from dlbench.runner import evaluate_metrics, load_run

    record, model, dataset = load_run(args.run_dir, device=args.device, bindings=args.gin_param)
    names = args.metrics or sorted(name for name in record["metrics"] if name != EXACT_METRICS)
    if not names:
        raise ConfigError(f"{args.run_dir}: the run has no metrics yet; name some with --metrics")
    seed = record["seed"] if args.seed is None else args.seed
    results = evaluate_metrics(model, dataset, names, seed)
    # Re-read: the run directory may have changed while the metrics ran.
    record = read_record(args.run_dir)
    record["metrics"], record["metrics_history"] = merge_results(
        record["metrics"], record.get("metrics_history", []), results)
    write_record(args.run_dir, record)
    for name in names:
        scores = {key: value for key, value in results[name].items() if key not in ("provenance", "seconds")}
        print(f"{name}: {scores}")
    return 0


def merge_results(metrics: dict[str, Any], history: list[dict[str, Any]], results: dict[str, Any]
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """New results replace old ones of the same metric; each replaced result moves to the history
    with the time it was replaced, so no score or its provenance is ever dropped."""
    replaced_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    moved = [{"metric": name, "replaced_at": replaced_at, "result": metrics[name]}
             for name in results if name in metrics]
    return {**metrics, **results}, [*history, *moved]


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score a finished run again (no retraining); "
                                   "old scores move to the record's metrics_history")
    parser.add_argument("run_dir", help="directory of a finished run (holds record.json and state.npz)")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help="metrics to compute (default: those the record already has)")
    parser.add_argument("--seed", type=int, default=None, help="metric seed (default: the run's seed)")
    parser.add_argument("-p", "--gin-param", action="append", default=[], metavar="BINDING",
                        help="a gin binding applied over the run's config, e.g. 'mig.num_train = 5000'")
    parser.add_argument("--device", default="auto", help="device to score on: auto, cpu, cuda, cuda:N")
    parser.set_defaults(handler=_evaluate)
