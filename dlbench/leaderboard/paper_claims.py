"""The four claims of the paper (linear-gaussian.md, "What the theory says"; deep-protocol.md, "What the paper
reports"), with their rules, judges and the runs that would test them properly. The thresholds are fixed here and
not tuned to any data."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from dlbench.leaderboard.claims import (
    BETA,
    LAMBDA,
    Cells,
    Claim,
    Minimum,
    Part,
    PartResult,
    ProperTest,
    cell_name,
    known,
    not_testable,
    sound_cells,
    statistics,
)
from dlbench.leaderboard.scale import DEEP_PROTOCOLS, PAPER_DEEP, protocol_for
from dlbench.leaderboard.tables import Study
from dlbench.leaderboard.verdicts import Comparison, from_checks, from_comparisons, shown
from dlbench.results import HEADLINE_METRICS, Condition, Group

COLLAPSED_SAP, COLLAPSED_I_M = 0.01, 0.01
COLLAPSED_B_NORM = 0.01  # of the uncollapsed β = 1, λ = 0 encoder's mean ‖B‖₂ in the same study
CONTRACTION_TOLERANCE = 0.05  # relative: |ratio − 1/β| ≤ 5 % of 1/β
RESCUED_SAP, RESCUED_I_M = 0.05, 0.1
MIN_BETAS, LARGE_BETA = 3, 16.0
LINEAR_MINIMUM = Minimum(replicates=5)
DEEP_MINIMUM = Minimum(replicates=5, official_data=True, share=0.5)
Point = tuple[dict[str, Any], Group]


def _collapsed_cells(cells: Cells) -> tuple[list[Point], list[str]]:
    return sound_cells(cells.select(lambda c: c[BETA] > 1 and c[LAMBDA] == 0))


def judge_collapse(cells: Cells) -> PartResult:
    reference = cells.find({BETA: 1.0, LAMBDA: 0.0})
    targets, left = _collapsed_cells(cells)
    if reference is None or reference.failed or not known(reference, "b_norm"):
        return not_testable("no β = 1, λ = 0 cell with every start converged, to measure the uncollapsed ‖B‖₂",
                             *left)
    if len(targets) < MIN_BETAS:
        return not_testable(f"{len(targets)} β > 1 cells at λ = 0 with every start converged; {MIN_BETAS} needed",
                             *left)
    limit = COLLAPSED_B_NORM * statistics(reference, "b_norm")[0]
    lines, checks = [f"β = 1, λ = 0 (uncollapsed): ‖B‖₂ {shown(statistics(reference, 'b_norm'))}; collapsed means "
                     f"‖B‖₂ ≤ {limit:.3g}"], []
    for cell, group in targets:
        sap, i_m, b_norm = (statistics(group, metric)[0] for metric in ("sap", "i_m", "b_norm"))
        checks.append(sap <= COLLAPSED_SAP and i_m <= COLLAPSED_I_M and b_norm <= limit)
        lines.append(f"{cell_name(cell)}: SAP {shown(statistics(group, 'sap'))}, I_m {shown(statistics(group, 'i_m'))}"
                     f", ‖B‖₂ {shown(statistics(group, 'b_norm'))}" + ("" if checks[-1] else " (not collapsed)"))
    return PartResult(from_checks(checks), (*lines, *left))


def judge_contraction(cells: Cells) -> PartResult:
    targets, left = _collapsed_cells(cells)
    recorded = [(cell, group) for cell, group in targets if known(group, "b_norm_ratio")]
    if len(recorded) < MIN_BETAS:
        return not_testable(f"{len(recorded)} β > 1 cells at λ = 0 with every start converged record b_norm_ratio "
                             f"(the fixed-point solver's ‖B_k+1‖₂ / ‖B_k‖₂); {MIN_BETAS} needed", *left)
    checks, lines = [], []
    for cell, group in recorded:
        ratio = statistics(group, "b_norm_ratio")[0]
        checks.append(abs(ratio - 1 / cell[BETA]) <= CONTRACTION_TOLERANCE / cell[BETA])
        lines.append(f"{cell_name(cell)}: ‖B_k+1‖₂ / ‖B_k‖₂ {shown(statistics(group, 'b_norm_ratio'))} vs 1/β = "
                     f"{1 / cell[BETA]:.4g}" + ("" if checks[-1] else " (off 1/β)"))
    return PartResult(from_checks(checks), (*lines, *left))


def judge_rescue(cells: Cells) -> PartResult:
    targets, left = sound_cells(cells.select(lambda c: c[BETA] > 1 and c[LAMBDA] > 0))
    if not targets:
        return not_testable("no β > 1, λ > 0 cell with every start converged", *left)
    checks, lines = [], []
    for cell, group in targets:
        sap, i_m = statistics(group, "sap")[0], statistics(group, "i_m")[0]
        checks.append(sap >= RESCUED_SAP and i_m >= RESCUED_I_M)
        lines.append(f"{cell_name(cell)}: SAP {shown(statistics(group, 'sap'))}, I_m {shown(statistics(group, 'i_m'))}"
                     + ("" if checks[-1] else " (not rescued)"))
    return PartResult(from_checks(checks), (*lines, *left))


def _beta_profile(cells: Cells, metric: str) -> tuple[list[Point], list[str]]:
    """The sound λ = 0 cells with at least two values of `metric`, by β (a β-VAE without a λ axis is λ = 0)."""
    points, left = sound_cells(cells.select(lambda c: c.get(LAMBDA, 0.0) == 0))
    return [(cell, group) for cell, group in points if known(group, metric, 2)], left


def peak_judge(metric: str):
    label = HEADLINE_METRICS[metric].label

    def judge(cells: Cells) -> PartResult:
        points, left = _beta_profile(cells, metric)
        betas = [cell[BETA] for cell, _ in points]
        if len(points) < MIN_BETAS or max(betas) < LARGE_BETA:
            return not_testable(f"{label} at λ = 0 at {len(points)} β values up to β = {max(betas, default=0):g}; "
                                 f"{MIN_BETAS} needed, the largest ≥ {LARGE_BETA:g}", *left)
        stats = [statistics(group, metric) for _, group in points]
        peak = int(np.argmax([mean for mean, _, _ in stats]))
        if 0 < peak < len(points) - 1:
            comparisons = [Comparison(f"β = {betas[peak]:g} (peak) vs β = {betas[end]:g}", stats[peak], stats[end],
                                      True) for end in (0, -1)]
        else:  # the claim says an intermediate β is not beaten by an end of the range
            middle = 1 + int(np.argmax([mean for mean, _, _ in stats[1:-1]]))
            comparisons = [Comparison(f"β = {betas[peak]:g} (peak, at an end of the range) vs β = {betas[middle]:g} "
                                      "(best intermediate)", stats[peak], stats[middle], False)]
        profile = f"{label} at λ = 0 by β: " + "; ".join(f"{b:g}: {shown(s)}" for b, s in zip(betas, stats))
        return PartResult(from_comparisons(comparisons), (profile, *(c.text() for c in comparisons), *left))

    return judge


def _lambda_comparisons(cells: Cells, metric: str, beta: float, claimed_higher: bool) -> list[Comparison]:
    points, _ = sound_cells(cells.select(lambda c: c[BETA] == beta))
    base = next((group for cell, group in points if cell[LAMBDA] == 0), None)
    if base is None or not known(base, metric, 2):
        return []
    return [Comparison(f"{HEADLINE_METRICS[metric].label} at β = {beta:g}: λ = {cell[LAMBDA]:g} vs λ = 0",
                       statistics(group, metric), statistics(base, metric), claimed_higher)
            for cell, group in points if cell[LAMBDA] > 0 and known(group, metric, 2)]


def _paired_betas(cells: Cells) -> list[float]:
    """The β values with a sound λ = 0 cell and a sound λ > 0 cell."""
    points, _ = sound_cells(cells.select(lambda c: True))
    with_zero = {cell[BETA] for cell, _ in points if cell[LAMBDA] == 0}
    return sorted(with_zero & {cell[BETA] for cell, _ in points if cell[LAMBDA] > 0})


def judge_reconstruction(cells: Cells) -> PartResult:
    comparisons = [c for beta in _paired_betas(cells) for c in _lambda_comparisons(cells, "reconstruction", beta,
                                                                                   False)]
    _, left = sound_cells(cells.select(lambda c: True))
    if not comparisons:
        return not_testable("no β with sound λ = 0 and λ > 0 cells holding reconstruction", *left)
    return PartResult(from_comparisons(comparisons), (*(c.text() for c in comparisons), *left))


def judge_kept(cells: Cells) -> PartResult:
    _, left = sound_cells(cells.select(lambda c: True))
    largest = max(_paired_betas(cells), default=math.nan)
    if not largest >= LARGE_BETA:
        return not_testable(f"the largest β with sound λ = 0 and λ > 0 cells is {largest:g}, below "
                             f"{LARGE_BETA:g}: the collapse at large β cannot show", *left)
    comparisons = [c for metric in ("mig", "sap", "i_m") for c in _lambda_comparisons(cells, metric, largest, True)]
    return PartResult(from_comparisons(comparisons), (*(c.text() for c in comparisons), *left))


def _lambda_zero(study: Study) -> list[Condition]:
    has_lambda = LAMBDA in study.axes or any(name == LAMBDA for name, _ in study.fixed)
    return [Condition(LAMBDA, "=", 0.0)] if has_lambda else []


def _linear_test() -> ProperTest:
    """The paper's linear grid at both sizes: 25 cells × 50 starts per solver."""
    solutions = {size: 25 * 50 for size in (100, 50)}
    adamw = sum(count * protocol_for("linear_gaussian_vae", {"solver": "adamw"}, {"n": size}).steps["adamw_iterations"]
                for size, count in solutions.items())
    return ProperTest(
        commands=("dlbench run gin/linear_gaussian.gin",
                  "dlbench run gin/linear_gaussian.gin gin/linear_gaussian_n50.gin"),
        runs=2, solutions=2 * sum(solutions.values()),
        steps="AdamW 50,000 iterations (n = 100) or 30,000 (n = 50); the fixed-point solver to its tolerance (at most "
              "100,000 or 50,000 half-steps)", model_steps=adamw,
        least=f"one run of either solver with {LINEAR_MINIMUM.replicates} starts per cell whose starts converge "
              "(the CPU preset gin/linear_gaussian_cpu.gin does for the fixed-point solver)")


DEEP_DATASETS = {"dsprites": "dsprites", "shapes3d": "shapes3d", "mpi3d_real": "mpi3d"}  # dataset → gin file suffix


def _deep_test(model: str, prefix: str, lambdas: int) -> ProperTest:
    """The paper's grid (5 β, `lambdas` λ values, 10 seeds) on the three official datasets."""
    steps = DEEP_PROTOCOLS[model].steps
    betas, seeds = 5, 10
    per_dataset = betas * seeds * steps.get("beta_steps", 0) + betas * lambdas * seeds * steps["training_steps"]
    least_steps = int(DEEP_MINIMUM.share * sum(steps.values()))
    return ProperTest(
        commands=tuple(f"dlbench data prepare {dataset} && dlbench run gin/{prefix}_{suffix}.gin "
                       "-p 'dataset.source = \"official\"'" for dataset, suffix in DEEP_DATASETS.items()),
        runs=len(DEEP_DATASETS), solutions=len(DEEP_DATASETS) * betas * lambdas * seeds,
        steps=" + ".join(f"{key} {value:,}" for key, value in steps.items()) + f", {PAPER_DEEP}",
        model_steps=len(DEEP_DATASETS) * per_dataset,
        least=f"{MIN_BETAS} β values up to β ≥ {LARGE_BETA:g} with {DEEP_MINIMUM.replicates} seeds at "
              f"{least_steps:,} steps per solution ({100 * DEEP_MINIMUM.share:g} % of the protocol) on one official "
              "dataset")


def _only_lambda_zero(study: Study) -> list[Condition]:
    return [Condition(LAMBDA, "=", 0.0)]


def _rescue_cells(study: Study) -> list[Condition]:
    return [Condition(BETA, ">", 1.0), Condition(LAMBDA, ">", 0.0)]


def _all_cells(study: Study) -> list[Condition]:
    return []


def _peak_rule(metric: str) -> str:
    return (f"{HEADLINE_METRICS[metric].label}: the β with the highest mean at λ = 0 is intermediate and above both "
            "the smallest and the largest β beyond the seed spread (reproduced); a peak at an end of the β range "
            "above the best intermediate β beyond the spread contradicts it (not reproduced); anything else is no "
            "difference.")


CLAIMS: Sequence[Claim] = (
    Claim(1, "Linear model: for β > 1 at λ = 0 the encoder collapses (SAP, I_m ≈ 0, ‖B‖₂ ≈ 0), ‖B‖₂ contracting by "
             "1/β per iteration.",
          ("linear_gaussian_vae",), ("sap", "i_m", "b_norm", "b_norm_ratio"), _only_lambda_zero, LINEAR_MINIMUM,
          f"a β = 1, λ = 0 cell and at least {MIN_BETAS} β > 1 cells at λ = 0 whose starts all converged",
          (Part("(a)", f"At every β > 1, λ = 0 cell whose starts all converged: mean SAP ≤ {COLLAPSED_SAP}, mean I_m ≤ "
                       f"{COLLAPSED_I_M} nats and mean ‖B‖₂ (b_norm) at most {100 * COLLAPSED_B_NORM:g} % of the same "
                       "study's β = 1, λ = 0 cell's (the uncollapsed encoder; a fixed threshold would judge how close "
                       "an optimiser's steps can bring ‖B‖₂ to 0, not whether the encoder collapsed).", judge_collapse),
           Part("(b)", "Where the solver records the last iteration's ‖B_k+1‖₂ / ‖B_k‖₂ (b_norm_ratio; the fixed-point "
                       f"solver does), its mean at each such β is within {100 * CONTRACTION_TOLERANCE:g} % of 1/β.",
                judge_contraction)),
          _linear_test()),
    Claim(2, "Linear model: λ > 0 rescues it (SAP and I_m clearly above 0 for β > 1, λ > 0).",
          ("linear_gaussian_vae",), ("sap", "i_m"), _rescue_cells, LINEAR_MINIMUM,
          "a β > 1, λ > 0 cell whose starts all converged",
          (Part("(a)", f"At every β > 1, λ > 0 cell whose starts all converged: mean SAP ≥ {RESCUED_SAP} and "
                       f"mean I_m ≥ {RESCUED_I_M} nats.", judge_rescue),),
          _linear_test()),
    Claim(3, "Deep models (λ = 0): MIG and SAP peak at an intermediate β and deteriorate at large β.",
          ("beta_vae", "lambda_beta_vae"), ("mig", "sap"), _lambda_zero, DEEP_MINIMUM,
          f"at least {MIN_BETAS} β values at λ = 0, the largest ≥ {LARGE_BETA:g}",
          (Part("(a)", _peak_rule("mig"), peak_judge("mig")), Part("(b)", _peak_rule("sap"), peak_judge("sap"))),
          _deep_test("beta_vae", "bvae", 1)),
    Claim(4, "Deep models: λ > 0 improves reconstruction at every β and keeps MIG, SAP and I_m from collapsing at "
             "large β.",
          ("lambda_beta_vae",), ("reconstruction", "mig", "sap", "i_m"), _all_cells, DEEP_MINIMUM,
          f"a β with λ = 0 and λ > 0 cells, and for (b) such a β ≥ {LARGE_BETA:g}",
          (Part("(a)", "At every β with λ = 0 and λ > 0 cells, each λ > 0 cell's mean reconstruction is below the "
                       "λ = 0 cell's beyond the seed spread (reproduced); one above it beyond the spread contradicts "
                       "it (not reproduced); anything else is no difference.", judge_reconstruction),
           Part("(b)", f"At the largest such β (at least {LARGE_BETA:g}), each λ > 0 cell's mean MIG, SAP and "
                       "I_m (each present) is above the λ = 0 cell's beyond the seed spread (reproduced); one below "
                       "it beyond the spread contradicts it (not reproduced); anything else is no difference.",
                judge_kept)),
          _deep_test("lambda_beta_vae", "lbvae", 5)),
)
