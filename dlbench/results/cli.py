"""`dlbench results RESULT_DIRS... [--where ...] [--group ...] [--pool ...] [--metrics ...]`: mean ± std over
the solutions of each group. Model, dataset, source and config are always among the group fields unless --pool
names them, so two experiments are never averaged together without being asked to."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from dlbench.errors import ConfigError
from dlbench.results.formatting import format_groups, grouping_note
from dlbench.results.headline import HEADLINE_METRICS
from dlbench.results.queries import Group, Results
from dlbench.results.reading import IDENTITY_FIELDS, RUN_FIELDS
from dlbench.results.where import WHERE_SYNTAX


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _pooled(text: str | None) -> list[str]:
    pooled = _names(text)
    unknown = [name for name in pooled if name not in IDENTITY_FIELDS]
    if unknown:
        raise ConfigError(f"--pool field {unknown[0]!r} is not accepted; expected some of: "
                          f"{', '.join(IDENTITY_FIELDS)}")
    return pooled


def group_fields(requested: Sequence[str], pooled: Sequence[str] = ()) -> list[str]:
    """The fields a query groups by: model, dataset, source and config hash (less those pooled on purpose), then
    the requested ones."""
    identity = [name for name in IDENTITY_FIELDS if name not in pooled or name in requested]
    return [*identity, *(name for name in requested if name not in identity)]


def _cmd_results(args: argparse.Namespace) -> int:
    pooled = _pooled(args.pool)
    with Results(args.result_dirs, rebuild=args.rebuild, include_unverified=args.include_unverified) as results:
        metrics = _names(args.metrics) or list(HEADLINE_METRICS)
        group_by = group_fields(_names(args.group) or results.setting_axes(args.where), pooled)
        groups = results.groups(args.where, group_by, metrics)
        if not args.metrics:  # only the headline metrics these solutions have
            metrics = [m for m in metrics if any(g.statistics[m][2] for g in groups)]
            groups = [Group(g.key, g.count, {m: g.statistics[m] for m in metrics}, g.run_ids, g.failed, g.failures,
                            g.unverified) for g in groups]
        for warning in results.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if args.format == "table":
            print(grouping_note(group_by, pooled, len(results.unverified), args.include_unverified))
        print(format_groups(groups, group_by, metrics, args.format))
    return 0


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of every command that reads records through the results store."""
    parser.add_argument("result_dirs", nargs="+", metavar="RESULT_DIR", help="directories holding run directories")
    parser.add_argument("--include-unverified", action="store_true",
                        help="use records without a digest (legacy schema), marked unverified in every output")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the results indexes from the records")


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "results", help="query run records: mean ± std over replicates per group, from an SQLite index",
        description="Index the run records under RESULT_DIRS (kept in RESULT_DIR/.dlbench-index.sqlite, "
                    "updated incrementally) and print each group's mean ± std (ddof = 0) over its solutions "
                    "and their count n (the replicate count when every setting is grouped on, as by default). "
                    "Groups always keep models, datasets, sources and configs apart unless --pool names them.")
    add_record_arguments(parser)
    parser.add_argument("--where", default="", help="e.g. 'dataset=shapes3d and beta>=8'; fields: axis names, "
                        f"{', '.join(RUN_FIELDS)}; {WHERE_SYNTAX}")
    parser.add_argument("--group", help="comma-separated fields, grouped on beside model, dataset, source and "
                        "config_hash (default: every setting axis)")
    parser.add_argument("--pool", help=f"comma-separated fields among {', '.join(IDENTITY_FIELDS)} whose values a "
                        "group may mix (default: none)")
    parser.add_argument("--metrics", help=f"comma-separated aliases ({', '.join(HEADLINE_METRICS)}) or raw "
                        "'metric.score' names (default: the headline metrics present)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.set_defaults(handler=_cmd_results)
