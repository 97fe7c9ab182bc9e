"""Summaries over replicates (deep-protocol.md, "Post-processing"): mean, standard deviation with ddof = 0 and the
count of known values, from arrays or combined exactly from the partial moments each index computes."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np

# (count of known values, their mean, their sum of squared deviations from it)
Moments = tuple[int, float, float]
NO_VALUES: Moments = (0, 0.0, 0.0)


def summary(values: np.ndarray | Sequence[float]) -> tuple[float, float, int]:
    """(mean, standard deviation with ddof = 0, count) of the known (non-NaN) values; NaNs and 0 when none is
    known."""
    import numpy as np  # only the benchmark's baseline summarises arrays: `dlbench --help` never loads numpy

    known = np.asarray(values, dtype=float).ravel()
    known = known[~np.isnan(known)]
    if known.size == 0:
        return float("nan"), float("nan"), 0
    return float(known.mean()), float(known.std()), int(known.size)


def combined(first: Moments, second: tuple[Any, Any, Any]) -> Moments:
    """The moments of two disjoint sets of values, exactly (Chan et al.); `second` as SQL returns it (NULLs where
    it has no values)."""
    count_a, mean_a, squares_a = first
    count_b, mean_b, squares_b = second[0], second[1] or 0.0, second[2] or 0.0
    if count_b == 0:
        return first
    if count_a == 0:
        return count_b, mean_b, squares_b
    count = count_a + count_b
    delta = mean_b - mean_a
    return count, mean_a + delta * count_b / count, squares_a + squares_b + delta * delta * count_a * count_b / count


def mean_std_count(moments: Moments) -> tuple[float, float, int]:
    """(mean, standard deviation with ddof = 0, count); NaNs and 0 without values."""
    known, mean, squares = moments
    if not known:
        return math.nan, math.nan, 0
    return mean, math.sqrt(squares / known), known
