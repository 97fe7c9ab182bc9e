"""The answer of `dlbench results` as a table, CSV or JSON: each group's fields, its solution count, how many of
them failed (did not converge or diverged) or come from unverified records, and each metric's mean ± std."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Sequence

from dlbench.results.queries import Group


def format_mean_std(mean: float, std: float, digits: int = 4) -> str:
    return "-" if math.isnan(mean) else f"{mean:.{digits}g} ± {std:.{digits}g}"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _as_json(groups: Sequence[Group], group_by: Sequence[str]) -> str:
    payload = [{"group": dict(zip(group_by, g.key)), "n": g.count, "failed": g.failed, "failures": list(g.failures),
                "unverified": g.unverified, "runs": list(g.run_ids),
                "metrics": {m: {"mean": _json_number(mean), "std": _json_number(std), "n": n}
                            for m, (mean, std, n) in g.statistics.items()}} for g in groups]
    return json.dumps(payload, indent=1)


def _as_csv(groups: Sequence[Group], group_by: Sequence[str], metrics: Sequence[str]) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*group_by, "n", "failed", "unverified",
                     *(f"{m}_{part}" for m in metrics for part in ("mean", "std", "n"))])
    for g in groups:
        writer.writerow([*("" if v is None else v for v in g.key), g.count, g.failed, g.unverified,
                         *("" if isinstance(x, float) and math.isnan(x) else x
                           for m in metrics for x in g.statistics[m])])
    return stream.getvalue().rstrip("\n")


def _as_table(groups: Sequence[Group], group_by: Sequence[str], metrics: Sequence[str]) -> str:
    from dlbench.summary import format_table  # loads torch: only for the table

    counts = [name for name, present in (("failed", any(g.failed for g in groups)),
                                         ("unverified", any(g.unverified for g in groups))) if present]
    rows = []
    for g in groups:
        cells = []
        for m in metrics:
            mean, std, known = g.statistics[m]
            text = format_mean_std(mean, std)
            cells.append(text if known in (0, g.count) else f"{text} (n={known})")
        rows.append([*(_cell(v) for v in g.key), g.count, *(getattr(g, name) for name in counts), *cells])
    return format_table([*group_by, "n", *counts, *metrics], rows)


def format_groups(groups: Sequence[Group], group_by: Sequence[str], metrics: Sequence[str], style: str) -> str:
    if style == "json":
        return _as_json(groups, group_by)
    if style == "csv":
        return _as_csv(groups, group_by, metrics)
    return _as_table(groups, group_by, metrics)


def grouping_note(group_by: Sequence[str], pooled: Sequence[str], unverified: int, included: bool) -> str:
    """The line above a table that says what its groups keep apart and what they pool."""
    note = (f"grouped by {', '.join(group_by)}; n = solutions per group; mean ± std with ddof = 0; "
            + (f"pooled over {', '.join(pooled)} (--pool)" if pooled else
               "model, dataset, source and config are always kept apart unless --pool names them"))
    if unverified:
        note += (f"; {unverified} unverified record(s) (no digest) "
                 + ("included and counted under 'unverified'" if included else "left out"))
    return note
