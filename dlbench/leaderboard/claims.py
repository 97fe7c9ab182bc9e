"""The paper's claims, each one object: which models it is about, the cells its numbers come from, the minimum
scale a study needs to test it, its parts (each with its rule and its judge), and what a proper test needs.

A judge sees one study's cells as the report's printed `dlbench results` command returns them, and answers a
verdict with the lines that show why. Non-converged or diverged replicates never decide: a cell with any is left
out of the judgement and named."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from dlbench.leaderboard.scale import source_label
from dlbench.leaderboard.tables import Study
from dlbench.leaderboard.verdicts import NOT_TESTABLE
from dlbench.results import Condition, Group

BETA, LAMBDA = "beta", "lambda"  # the paper's hyperparameters, the axes its claims are about


@dataclass(frozen=True)
class Cells:
    """One study's settings, as the printed query returns them: (labels, group) pairs."""
    groups: tuple[tuple[dict[str, Any], Group], ...]

    def find(self, labels: dict[str, Any]) -> Group | None:
        return next((group for cell, group in self.groups if all(cell.get(k) == v for k, v in labels.items())), None)

    def select(self, keep: Callable[[dict[str, Any]], bool]) -> list[tuple[dict[str, Any], Group]]:
        return sorted(((cell, group) for cell, group in self.groups if keep(cell)),
                      key=lambda item: (item[0].get(BETA, 0), item[0].get(LAMBDA, 0)))


def statistics(group: Group, metric: str) -> tuple[float, float, int]:
    return group.statistics.get(metric, (float("nan"), float("nan"), 0))


def known(group: Group | None, metric: str, at_least: int = 1) -> bool:
    """Whether the cell has at least `at_least` values of `metric` (two for a comparison of spreads)."""
    return group is not None and statistics(group, metric)[2] >= at_least


def cell_name(cell: dict[str, Any]) -> str:
    names = {BETA: "β", LAMBDA: "λ"}
    return ", ".join(f"{names.get(axis, axis)} = {value:g}" for axis, value in cell.items()
                     if axis in names and isinstance(value, (int, float)))


@dataclass(frozen=True)
class PartResult:
    verdict: str
    lines: tuple[str, ...]


def not_testable(*reasons: str) -> PartResult:
    return PartResult(NOT_TESTABLE, reasons)


def sound_cells(cells: Sequence[tuple[dict[str, Any], Group]]) -> tuple[list, list[str]]:
    """The cells none of whose replicates failed, and a line for each left out."""
    kept = [(cell, group) for cell, group in cells if group.failed == 0]
    left = [f"{cell_name(cell)}: left out, {group.failed}/{group.count} {' or '.join(group.failures)}"
            for cell, group in cells if group.failed]
    return kept, left


@dataclass(frozen=True)
class Minimum:
    """The least a study needs before its numbers can test a claim."""
    replicates: int
    official_data: bool = False
    share: float | None = None  # of the protocol's steps per solution

    def text(self) -> str:
        parts = [f"at least {self.replicates} seeds or starts per setting"]
        if self.share is not None:
            parts.append(f"at least {100 * self.share:g} % of the protocol's steps per solution")
        if self.official_data:
            parts.append("the official dataset (a stand-in's scores are not comparable with published ones)")
        return "; ".join(parts)

    def reasons(self, study: Study) -> list[str]:
        scale, reasons = study.scale, []
        if scale.replicates[0] < self.replicates:
            reasons.append(f"{scale.replicates_text()} per setting, fewer than the {self.replicates} needed")
        if self.share is not None and (scale.share is None or scale.share < self.share):
            reasons.append(f"{scale.steps_text()}: below the {100 * self.share:g} % needed")
        if self.official_data and study.source != "official":
            reasons.append(f"{source_label(study.source)} data, not the official dataset")
        return reasons


@dataclass(frozen=True)
class Part:
    label: str
    rule: str
    judge: Callable[[Cells], PartResult]


@dataclass(frozen=True)
class ProperTest:
    """What a test of the claim at the protocol's scale takes."""
    commands: tuple[str, ...]
    runs: int
    solutions: int
    steps: str  # per solution
    model_steps: int
    least: str  # the smallest study that could test it at all


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    models: tuple[str, ...]
    metrics: tuple[str, ...]
    cells: Callable[[Study], list[Condition]]  # conditions beside the study's own that select its cells
    minimum: Minimum
    needs: str  # what else a study needs, judged by the parts
    parts: tuple[Part, ...]
    proper_test: ProperTest

    def rule(self) -> str:
        return " ".join([*(f"{part.label} {part.rule}" for part in self.parts),
                         f"Testable: a study of {' or '.join(self.models)} with {self.minimum.text()}; {self.needs}."])
