"""The leaderboard's arithmetic as pure functions on arrays: ranks, percent change, the Pareto front and the
augmented Tchebycheff pick (deep-protocol.md, "Post-processing"), and Welch's test of a difference between two
settings' means over their replicates. NaN marks an unknown value everywhere; nothing here reads files or draws."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

# The weights the authors report the Tchebycheff pick for.
TCHEBYCHEFF_WEIGHTS = (0.1, 0.5, 0.9)
# The augmentation term's coefficient in the authors' formula.
TCHEBYCHEFF_AUGMENTATION = 0.001


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


def change_from(means: np.ndarray, baseline: float) -> tuple[np.ndarray, bool]:
    """Each mean's change from `baseline` and whether it is a percent change: percent only where the baseline and
    every known mean are positive (a ratio of positive quantities means something), the absolute difference
    otherwise (a negative log-likelihood, say)."""
    means = np.asarray(means, dtype=float)
    known = means[~np.isnan(means)]
    if np.isfinite(baseline) and baseline > 0 and (known > 0).all():
        return percent_change(means, baseline), True
    return means - baseline, False


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


def welch_test(first: tuple[float, float, int], second: tuple[float, float, int]) -> tuple[float, float, float]:
    """Welch's two-sample t-test from each sample's (mean, standard deviation with ddof = 0, count): (t, degrees
    of freedom by Welch–Satterthwaite, two-sided p). Both samples need two values or more; where neither varies,
    any difference of the means is certain (p = 0) and no difference is none (p = 1)."""
    (mean_a, std_a, count_a), (mean_b, std_b, count_b) = first, second
    if min(count_a, count_b) < 2:
        raise ValueError("Welch's test needs at least two values in each sample")
    var_a, var_b = (std ** 2 * count / (count - 1) / count for std, count in ((std_a, count_a), (std_b, count_b)))
    spread = var_a + var_b  # the squared standard error of the difference
    difference = mean_a - mean_b
    if spread == 0:
        return (math.copysign(math.inf, difference) if difference else 0.0), math.nan, float(difference == 0)
    t = difference / math.sqrt(spread)
    df = spread ** 2 / (var_a ** 2 / (count_a - 1) + var_b ** 2 / (count_b - 1))
    return t, df, float(2 * scipy_stats.t.sf(abs(t), df))
