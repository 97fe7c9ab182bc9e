"""`dlbench leaderboard RESULT_DIRS... --out DIR` and `dlbench report paper RESULT_DIRS... --out DIR`."""
from __future__ import annotations

import argparse
import sys

from dlbench.results.cli import add_record_arguments

DEFAULT_OUT = "leaderboard"


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from dlbench.leaderboard.build import build_leaderboard

    built = build_leaderboard(args.result_dirs, args.out, rebuild=args.rebuild, embed_figures=args.embed_figures,
                              include_unverified=args.include_unverified)
    _print_warnings(built.warnings)
    content = built.content
    print(f"leaderboard of {content.record_count} runs ({content.solution_count} solutions): "
          f"{len(content.rankings)} rankings, {len(content.studies)} studies, "
          f"{sum(1 for p in built.written if p.suffix == '.png')} figures")
    print(f"written: {args.out}/README.md, {args.out}/index.html")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from dlbench.leaderboard.report import write_paper_report

    path, judgements, warnings = write_paper_report(args.result_dirs, args.out, rebuild=args.rebuild,
                                                    include_unverified=args.include_unverified)
    _print_warnings(warnings)
    for judgement in judgements:
        print(f"claim {judgement.claim.number}: {judgement.verdict}: {judgement.claim.title}")
    print(f"written: {path}")
    return 0


def add_commands(subparsers) -> None:
    leaderboard = subparsers.add_parser(
        "leaderboard", help="rank settings per dataset, source and metric; README.md, index.html, figures",
        description="Build the leaderboard of the run records under RESULT_DIRS: Markdown tables (README.md), one "
                    "static HTML page (index.html, linking figures/*.png, or carrying them with --embed-figures), "
                    "figures/*.png and copies of the records.")
    add_record_arguments(leaderboard)
    leaderboard.add_argument("--out", default=DEFAULT_OUT, help=f"output directory: missing, empty or one dlbench "
                             f"wrote (default: {DEFAULT_OUT})")
    leaderboard.add_argument("--embed-figures", action="store_true",
                             help="carry the figures inside index.html (one file to send) instead of linking figures/")
    leaderboard.set_defaults(handler=_cmd_leaderboard)

    report = subparsers.add_parser("report", help="reports built from run records")
    # The same parser class as the command line's, so a mistake below `report` is reported the same way.
    kinds = report.add_subparsers(dest="report", metavar="KIND", parser_class=type(report))
    kinds.required = True
    paper = kinds.add_parser("paper", help="each claim of the paper, the numbers measured and a verdict (paper.md)")
    add_record_arguments(paper)
    paper.add_argument("--out", default=DEFAULT_OUT, help=f"output directory for paper.md: missing, empty or one "
                       f"dlbench wrote (default: {DEFAULT_OUT})")
    paper.set_defaults(handler=_cmd_report)
