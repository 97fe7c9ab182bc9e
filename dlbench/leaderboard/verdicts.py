"""How the report's verdicts are reached, as pure functions: a difference between two settings counts only
beyond their seed spread (Welch's two-sample t-test on the replicates, two-sided, α = 0.05), and a claim's part
is judged from its comparisons and checks, then across studies, then the claim from its parts."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from dlbench.leaderboard.stats import welch_test
from dlbench.results import format_mean_std

REPRODUCED, NOT_REPRODUCED, NO_DIFFERENCE, NOT_TESTABLE = (
    "reproduced", "not reproduced", "no difference", "not testable at this scale")
ALPHA = 0.05
AS_CLAIMED, CONTRARY, WITHIN_SPREAD = "as claimed", "contrary to the claim", "no difference"
DIFFERENCE_RULE = (f"A difference between two settings counts only beyond their seed spread: Welch's two-sample "
                   f"t-test on their replicates (standard deviations with ddof = 1 inside the test), two-sided, "
                   f"p < {ALPHA}; otherwise the two are 'no difference'.")


def shown(statistics: tuple[float, float, int]) -> str:
    """A setting's numbers as `dlbench results` prints them, and its count."""
    mean, std, count = statistics
    return f"{format_mean_std(mean, std)} (n={count})"


@dataclass(frozen=True)
class Comparison:
    """Whether `first` beats `second` in the claimed direction beyond their spread."""
    label: str
    first: tuple[float, float, int]
    second: tuple[float, float, int]
    claimed_higher: bool  # the claim says first > second (else first < second)

    @cached_property
    def test(self) -> tuple[float, float, float]:
        return welch_test(self.first, self.second)

    @property
    def outcome(self) -> str:
        t, _, p = self.test
        if not p < ALPHA:
            return WITHIN_SPREAD
        return AS_CLAIMED if (t > 0) == self.claimed_higher else CONTRARY

    def text(self) -> str:
        t, df, p = self.test
        return (f"{self.label}: {shown(self.first)} vs {shown(self.second)}; Welch t = {t:.3g}, df = {df:.3g}, "
                f"p = {p:.2g}: {self.outcome}")


def from_comparisons(comparisons: Sequence[Comparison]) -> str:
    """A part's verdict from its comparisons: reproduced when every one is as claimed beyond the spread, not
    reproduced when any is contrary beyond it, else no difference."""
    outcomes = {comparison.outcome for comparison in comparisons}
    if not outcomes:
        return NOT_TESTABLE
    if CONTRARY in outcomes:
        return NOT_REPRODUCED
    return REPRODUCED if outcomes == {AS_CLAIMED} else NO_DIFFERENCE


def from_checks(checks: Sequence[bool]) -> str:
    """A part's verdict from threshold checks (no replicate spread involved)."""
    if not checks:
        return NOT_TESTABLE
    return REPRODUCED if all(checks) else NOT_REPRODUCED


def across_studies(verdicts: Sequence[str]) -> str:
    """A part over the studies that could test it: not reproduced when any study contradicts it, reproduced when
    every one reproduces it, no difference otherwise; not testable when none could."""
    judged = [v for v in verdicts if v != NOT_TESTABLE]
    if not judged:
        return NOT_TESTABLE
    if NOT_REPRODUCED in judged:
        return NOT_REPRODUCED
    return REPRODUCED if all(v == REPRODUCED for v in judged) else NO_DIFFERENCE


def of_claim(parts: Sequence[str]) -> str:
    """A claim from its parts: reproduced only when every part is, not reproduced when any part is not, else no
    difference when a part shows none, else not testable at this scale."""
    if NOT_REPRODUCED in parts:
        return NOT_REPRODUCED
    if all(part == REPRODUCED for part in parts):
        return REPRODUCED
    return NO_DIFFERENCE if NO_DIFFERENCE in parts else NOT_TESTABLE
