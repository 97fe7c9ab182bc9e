"""`dlbench report paper RESULT_DIRS... [--out leaderboard/]`: leaderboard/paper.md, each claim of the paper
(dlbench.leaderboard.paper_claims) judged on every study that can test it, with the rule, the scale, the numbers
and the exact `dlbench results` command that prints them, and what a proper test would take.

Verdicts: "reproduced", "not reproduced", "no difference" (the data cannot tell: differences inside the seed
spread) and "not testable at this scale" (below the claim's minimum scale, with the reason). Each part of a claim
is judged per study, then across studies, and the claim from its parts (dlbench.leaderboard.verdicts)."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dlbench import atomic_write
from dlbench.leaderboard import verdicts
from dlbench.leaderboard.claims import LAMBDA, Cells, Claim, PartResult, known, statistics
from dlbench.leaderboard.output import PAPER_TITLE, check_out_dir
from dlbench.leaderboard.paper_claims import CLAIMS
from dlbench.leaderboard.tables import Study, is_number, setting_rows, studies
from dlbench.results import HEADLINE_METRICS, IDENTITY_FIELDS, Condition, Results, group_fields, where_text

MAX_COMMANDS = 3  # `dlbench run` commands shown per study; the rest are counted


@dataclass(frozen=True)
class StudyJudgement:
    study: Study
    command: str  # the `dlbench results` command that prints the numbers below it
    parts: tuple[PartResult, ...]
    cells: Cells


@dataclass(frozen=True)
class ClaimJudgement:
    claim: Claim
    studies: tuple[StudyJudgement, ...]
    parts: tuple[str, ...]  # each part's verdict across studies
    verdict: str


def _quoted_dirs(result_dirs: Sequence[str | Path]) -> str:
    return " ".join(shlex.quote(str(d)) for d in result_dirs)


def study_conditions(claim: Claim, study: Study) -> list[Condition]:
    """The study (its model, dataset, source, config and fixed axes) and the claim's cells within it."""
    identity = [Condition(name, "=", getattr(study, name)) for name in IDENTITY_FIELDS]
    fixed = [Condition(axis, "=", float(value) if is_number(value) else value) for axis, value in study.fixed]
    return [*identity, *fixed, *claim.cells(study)]


def judge_study(claim: Claim, study: Study, results: Results, dirs: str) -> StudyJudgement:
    """The claim's parts on one study, from the groups its printed command returns; below the minimum scale every
    part is not testable, its reasons first and the numbers still shown."""
    conditions = study_conditions(claim, study)
    metrics = [m for m in claim.metrics if m in HEADLINE_METRICS or m in results.score_names]
    group_by = group_fields(results.setting_axes(conditions))
    groups = results.groups(conditions, group_by, metrics)
    cells = Cells(tuple(({f: v for f, v in zip(group_by, g.key) if f not in IDENTITY_FIELDS}, g) for g in groups))
    command = (f"dlbench results {dirs} --where {shlex.quote(where_text(conditions))} --metrics {','.join(metrics)}"
               + (" --include-unverified" if results.include_unverified else ""))
    reasons = claim.minimum.reasons(study)
    parts = []
    for part in claim.parts:
        judged = part.judge(cells)
        parts.append(PartResult(verdicts.NOT_TESTABLE, (*(f"not testable: {r}" for r in reasons), *judged.lines))
                     if reasons else judged)
    return StudyJudgement(study, command, tuple(parts), cells)


def judge_claims(results: Results, all_studies: Sequence[Study], dirs: str) -> list[ClaimJudgement]:
    judgements = []
    for claim in CLAIMS:
        judged = tuple(judge_study(claim, study, results, dirs) for study in all_studies if study.model in claim.models)
        parts = tuple(verdicts.across_studies([j.parts[i].verdict for j in judged]) for i in range(len(claim.parts)))
        judgements.append(ClaimJudgement(claim, judged, parts, verdicts.of_claim(parts)))
    return judgements


def mig_trend(judged: StudyJudgement) -> str | None:
    """What MIG does with β at λ = 0 in one deep study, beside the authors' own maps (an observation, not a
    verdict)."""
    points = sorted((cell["beta"], statistics(group, "mig")[0]) for cell, group in judged.cells.groups
                    if cell.get(LAMBDA, 0.0) == 0 and known(group, "mig"))
    if len(points) < 2:
        return None
    betas, means = zip(*points)
    rising = all(later >= earlier for earlier, later in zip(means, means[1:]))
    change = f"{100 * (means[-1] - means[0]) / means[0]:+.0f} %" if means[0] > 0 else "n/a"
    return (f"{judged.study.title} ({judged.study.scale.short()}): MIG at λ = 0 "
            f"{'rises monotonically' if rising else 'does not rise monotonically'} with β over "
            f"{', '.join(f'{b:g}' for b in betas)}; peak at β = {betas[int(np.argmax(means))]:g}; β = {betas[-1]:g} "
            f"vs β = {betas[0]:g}: {change}")


AUTHORS_MAPS = (
    "The authors' own percent-change maps (deep-protocol.md) show MIG *rising* with β up to β = 32 at λ = 0 on "
    "dSprites and Shapes3D, and peaking near β = 4 on MPI3D-real (below the β = 1 baseline at β = 32, lifted back "
    "above by λ = 8). What these records show at their own scale (observations, not verdicts):")
INTRODUCTION = (
    "Each claim states the rule its verdict is computed by; the rules are fixed in dlbench/leaderboard/"
    "paper_claims.py and are not tuned to the data. A claim is judged on each study (one model on one dataset, data "
    "source and config; for the linear model, one solver) of the models it is about, part by part. A study below the "
    "claim's minimum scale is **not testable at this scale**, with the reason (its numbers are still shown). "
    f"{verdicts.DIFFERENCE_RULE} Replicates that did not converge or diverged never decide: a cell holding any is "
    "left out of the judgement and named. A part is **not reproduced** when any study that can test it contradicts "
    "it, **reproduced** when every such study reproduces it, **no difference** otherwise; the claim is reproduced "
    "only when every part is. Means and standard deviations (ddof = 0) are over seeds (deep models) or random starts "
    "(linear model); n is their count. Under each study, the `dlbench results` command that prints its numbers.")


def _made_by(study: Study) -> str:
    commands = list(dict.fromkeys(run.facts["command"] for run in study.runs))
    shown = [f"`{command}`" if command else "no config files recorded" for command in commands[:MAX_COMMANDS]]
    return "; ".join(shown + ([f"and {len(commands) - MAX_COMMANDS} more"] if len(commands) > MAX_COMMANDS else []))


def _proper_test(claim: Claim) -> list[str]:
    test = claim.proper_test
    return [f"What a proper test needs: {test.runs} runs, {test.solutions:,} solutions, {test.steps} per solution: "
            f"{test.model_steps:,} model-steps in all. The least that could test it: {test.least}.", "",
            *(f"    {command}" for command in test.commands), ""]


def _study_section(judged: StudyJudgement, claim: Claim) -> list[str]:
    summary = "; ".join(f"{part.label} {result.verdict}" for part, result in zip(claim.parts, judged.parts))
    lines = [f"### {judged.study.title}: {summary}", "", f"Scale: {judged.study.scale.long()}; runs: "
             f"{len(judged.study.runs)}.", "", f"Made by: {_made_by(judged.study)}.", "",
             "Numbers, printed by:", "", f"    {judged.command}", ""]
    for part, result in zip(claim.parts, judged.parts):
        lines += [f"{part.label} **{result.verdict}**", "", *(f"- {line}" for line in result.lines), ""]
    return lines


def _claim_section(judgement: ClaimJudgement) -> list[str]:
    claim = judgement.claim
    parts = "; ".join(f"{part.label} {verdict}" for part, verdict in zip(claim.parts, judgement.parts))
    lines = [f"## Claim {claim.number}: {claim.title}", "", f"**Verdict: {judgement.verdict}** ({parts}).", "",
             f"Rule: {claim.rule()}", "", *_proper_test(claim)]
    if not judgement.studies:
        lines += [f"No study of {' or '.join(claim.models)} in these records.", ""]
    for judged in judgement.studies:
        lines += _study_section(judged, claim)
    if claim.number == 3:
        trends = [line for line in map(mig_trend, judgement.studies) if line]
        lines += [AUTHORS_MAPS, "", *(f"- {line}" for line in trends or ["no deep study with MIG"]), ""]
    return lines


def paper_markdown(judgements: Sequence[ClaimJudgement], dirs: str, warnings: Sequence[str]) -> str:
    lines = [PAPER_TITLE, "",
             f"Built by `dlbench report paper {dirs}` from the run records under {dirs}. {INTRODUCTION}", "",
             "| claim | verdict | parts |", "|---|---|---|",
             *(f"| {j.claim.number}. {j.claim.title} | **{j.verdict}** | "
               + "; ".join(f"{p.label} {v}" for p, v in zip(j.claim.parts, j.parts)) + " |" for j in judgements), ""]
    if warnings:
        lines += ["Records not used as they are (refused, unverified or counted once):", "",
                  *(f"- {w}" for w in warnings), ""]
    for judgement in judgements:
        lines += _claim_section(judgement)
    return "\n".join(lines).rstrip() + "\n"


def write_paper_report(result_dirs: Sequence[str | Path], out_dir: str | Path, rebuild: bool = False,
                       include_unverified: bool = False) -> tuple[Path, list[ClaimJudgement], list[str]]:
    """Write OUT/paper.md; return its path, the judgements and the warnings about records."""
    path = Path(out_dir) / "paper.md"
    check_out_dir(path.parent)
    dirs = _quoted_dirs(result_dirs)
    metrics = list(HEADLINE_METRICS)
    with Results(result_dirs, rebuild=rebuild, include_unverified=include_unverified) as results:
        rows = setting_rows(results, metrics)
        judgements = judge_claims(results, studies(rows, results.runs()), dirs)
        warnings = list(results.warnings)
    text = paper_markdown(judgements, dirs, warnings)
    atomic_write(path, lambda stream: stream.write(text.encode()))
    return path, judgements, warnings
