"""Plain-text tables of a run record, for the terminal."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from dlbench.errors import ConfigError
from dlbench.records import EXACT_METRICS


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in text_rows]
    return "\n".join(lines)


def scalar_scores(record: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every numeric score of the record as an array ("metric.score"; the model's own exact
    scores keep their bare names). Provenance and other non-numeric entries are skipped."""
    scores = {}
    for metric_name, result in record["metrics"].items():
        values = result.get("values", result) if isinstance(result, dict) else {}
        for score_name, value in values.items():
            if not isinstance(value, (int, float, list)) or value == []:
                continue
            label = score_name if metric_name == EXACT_METRICS else f"{metric_name}.{score_name}"
            try:
                scores[label] = np.array(value, dtype=float)  # None (non-finite) becomes nan
            except (TypeError, ValueError):
                continue  # a list that is not numbers
    return scores


def _mean_of_known(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over `axis` of the entries that are not NaN (unknown); NaN where none is known."""
    known = ~np.isnan(values)
    counts = known.sum(axis)
    totals = np.where(known, values, 0.0).sum(axis)
    return np.divide(totals, counts, out=np.full(counts.shape, np.nan), where=counts > 0)


def summarize(record: dict[str, Any], columns: list[str] | None = None) -> str:
    """One row per setting (the solution axes that are not replicate axes), means over the replicates (the
    model's `replicate_axes`: random starts, seeds)."""
    axes = record.get("solution_axes") or {}
    scores = scalar_scores(record)
    shape = tuple(len(labels) for labels in axes.values())
    scores = {k: v for k, v in scores.items() if v.shape == shape}
    if columns:
        unknown = [c for c in columns if c not in scores]
        if unknown:
            raise ConfigError(f"--columns {unknown[0]!r} is not accepted; expected scores of this run: "
                              f"{', '.join(scores) or 'none'}")
        scores = {k: scores[k] for k in columns}
    names = list(axes)
    for axis in record.get("replicate_axes", []):
        position = names.index(axis)
        scores = {k: _mean_of_known(v, axis=position) for k, v in scores.items()}
        names.pop(position)
    labels = [axes[name] for name in names]
    rows = []
    for index in itertools.product(*(range(len(axis_labels)) for axis_labels in labels)):
        setting = [labels[axis][i] for axis, i in enumerate(index)]
        rows.append(setting + [float(v[index]) for v in scores.values()])
    return format_table(names + list(scores), rows)
