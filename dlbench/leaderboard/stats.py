"""The leaderboard's arithmetic as pure functions on arrays: summaries over replicates, ranks, percent
change, the Pareto front and the augmented Tchebycheff pick (deep-protocol.md, "Post-processing").
NaN marks an unknown value everywhere; nothing here reads files or draws."""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

# The weights the authors report the Tchebycheff pick for.
TCHEBYCHEFF_WEIGHTS = (0.1, 0.5, 0.9)
# The augmentation term's coefficient in the authors' formula.
TCHEBYCHEFF_AUGMENTATION = 0.001


def summary(values: np.ndarray | Sequence[float]) -> tuple[float, float, int]:
    """(mean, standard deviation with ddof = 0, count) of the known (non-NaN) values; NaNs and 0 when
    none is known."""
    known = np.asarray(values, dtype=float).ravel()
    known = known[~np.isnan(known)]
    if known.size == 0:
        return float("nan"), float("nan"), 0
    return float(known.mean()), float(known.std()), int(known.size)


def group_summaries(keys: list[Hashable], values: np.ndarray) -> dict[Hashable, tuple[float, float, int]]:
    """summary() of the values sharing each key, keyed in order of first appearance."""
    groups: dict[Hashable, list[float]] = {}
    for key, value in zip(keys, np.asarray(values, dtype=float)):
        groups.setdefault(key, []).append(value)
    return {key: summary(np.array(group)) for key, group in groups.items()}


def ranks(means: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Competition ranks (1 = best; equal means share the better rank: 1, 2, 2, 4); NaN for unknown
    means, which are not ranked."""
    means = np.asarray(means, dtype=float)
    oriented = -means if higher_is_better else means
    known = ~np.isnan(oriented)
    result = np.full(means.shape, np.nan)
    for index in np.flatnonzero(known):
        result[index] = 1 + np.count_nonzero(oriented[known] < oriented[index])
    return result


def percent_change(means: np.ndarray, baseline: float) -> np.ndarray:
    """100 · (mean − baseline) / |baseline|: the sign says up or down even for a negative baseline
    (the linear model's NLL); NaN where the baseline is 0 or unknown."""
    means = np.asarray(means, dtype=float)
    if not np.isfinite(baseline) or baseline == 0:
        return np.full(means.shape, np.nan)
    return 100.0 * (means - baseline) / abs(baseline)


def pareto_front(costs: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Mask of the points no other point dominates, minimising `costs` and maximising `gains`: a
    point is dominated when another is at least as good in both and strictly better in one. Points
    with an unknown coordinate are never on the front."""
    costs, gains = np.asarray(costs, dtype=float), np.asarray(gains, dtype=float)
    known = ~(np.isnan(costs) | np.isnan(gains))
    at_least_as_good = (costs[None, :] <= costs[:, None]) & (gains[None, :] >= gains[:, None])
    strictly_better = (costs[None, :] < costs[:, None]) | (gains[None, :] > gains[:, None])
    dominated = (at_least_as_good & strictly_better & known[None, :]).any(axis=1)
    return known & ~dominated


def _normalised(deviation: np.ndarray, values: np.ndarray) -> np.ndarray:
    spread = np.nanmax(values) - np.nanmin(values)
    # Every cell equal: no cell deviates from the utopia point in this objective.
    return deviation / spread if spread > 0 else np.zeros_like(deviation)


def tchebycheff_scores(costs: np.ndarray, gains: np.ndarray, weight: float) -> np.ndarray:
    """The authors' augmented Tchebycheff score of each point (lower is better): deviations from the
    utopia point (min cost, max gain) normalised by the min–max range over points,
    max(w·Δcost, (1 − w)·Δgain) + 0.001·(w·Δcost + (1 − w)·Δgain). NaN where a coordinate is unknown."""
    costs, gains = np.asarray(costs, dtype=float), np.asarray(gains, dtype=float)
    known = ~(np.isnan(costs) | np.isnan(gains))
    if not known.any():
        return np.full(costs.shape, np.nan)
    cost_deviation = _normalised(costs - np.min(costs[known]), costs[known])
    gain_deviation = _normalised(np.max(gains[known]) - gains, gains[known])
    weighted_cost, weighted_gain = weight * cost_deviation, (1 - weight) * gain_deviation
    scores = np.maximum(weighted_cost, weighted_gain) + TCHEBYCHEFF_AUGMENTATION * (weighted_cost + weighted_gain)
    return np.where(known, scores, np.nan)


def tchebycheff_pick(costs: np.ndarray, gains: np.ndarray, weight: float) -> int | None:
    """Index of the point minimising the augmented Tchebycheff score (the first on a tie); None when
    no point is fully known."""
    scores = tchebycheff_scores(costs, gains, weight)
    if np.isnan(scores).all():
        return None
    return int(np.nanargmin(scores))
