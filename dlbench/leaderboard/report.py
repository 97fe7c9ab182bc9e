"""`dlbench report paper RESULT_DIRS... [--out leaderboard/]`: leaderboard/paper.md, each claim of the paper
with the command that tests it, the numbers measured, the scale and a verdict computed from the data by the
rules stated in the report (RULES below, the same text the code implements).

Verdicts: "reproduced", "not reproduced", "not testable at this scale". A claim is judged on each β × λ
study (one model on one dataset, data source and config; for the linear model, one solver) that can test
it; the claim is reproduced when every study that can test it reproduces it, not reproduced when any
fails, and not testable when none can, in which case the report says which run would test it."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from dlbench import atomic_write
from dlbench.leaderboard.tables import Study, setting_rows, source_label, studies
from dlbench.records import RECORD_FILE
from dlbench.results import HEADLINE_METRICS, Results, load_record

REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "not reproduced", "not testable at this scale"
# The linear model's own exact scores: a study that has them is a linear-Gaussian study, any other a deep one.
LINEAR_SCORES = ("b_norm", "b_norm_ratio")
COLLAPSED_SAP, COLLAPSED_I_M, COLLAPSED_B_NORM = 0.01, 0.01, 1e-3
CONTRACTION_TOLERANCE = 0.05  # relative: |ratio − 1/β| ≤ 5 % of 1/β
RESCUED_SAP, RESCUED_I_M = 0.05, 0.1
MIN_BETAS, MIN_REPLICATES, LARGE_BETA = 3, 2, 16.0

RULES = {
    1: f"For every β > 1 at λ = 0: mean SAP ≤ {COLLAPSED_SAP}, mean I_m ≤ {COLLAPSED_I_M} nats and mean ‖B‖₂ "
       f"(b_norm) ≤ {COLLAPSED_B_NORM:g}; and, where the solver records it (fixed point), the mean last-iteration "
       f"ratio b_norm_ratio within {CONTRACTION_TOLERANCE:.0%} of 1/β. Testable: a linear study with a β > 1, λ = 0 "
       "cell.",
    2: f"For every β > 1 and λ > 0: mean SAP ≥ {RESCUED_SAP} and mean I_m ≥ {RESCUED_I_M} nats. Testable: a linear "
       "study with a β > 1, λ > 0 cell.",
    3: f"At λ = 0, for each of MIG and SAP: the β with the highest mean is neither the smallest nor the largest β, "
       "and the mean at the largest β is below that peak by more than the larger of the two cells' standard "
       f"deviations over seeds. Testable: a deep study with at least {MIN_BETAS} β values at λ = 0, each with at "
       f"least {MIN_REPLICATES} seeds.",
    4: "(a) At every β that has a λ = 0 cell and λ > 0 cells, every λ > 0 cell has a lower mean reconstruction "
       "than the λ = 0 cell; (b) at the largest such β, every λ > 0 cell has a higher mean MIG, SAP and I_m (each "
       f"present) than the λ = 0 cell. Testable: a deep study whose cells have at least {MIN_REPLICATES} seeds, "
       f"with a β ≥ {LARGE_BETA:g} that has both λ = 0 and λ > 0 cells.",
}
TITLES = {
    1: "Linear model: for β > 1 at λ = 0 the encoder collapses (SAP, I_m ≈ 0, ‖B‖₂ ≈ 0), ‖B‖₂ contracting by "
       "1/β per iteration.",
    2: "Linear model: λ > 0 rescues it (SAP and I_m clearly above 0 for β > 1, λ > 0).",
    3: "Deep models (λ = 0): MIG and SAP peak at an intermediate β and deteriorate at large β.",
    4: "Deep models: λ > 0 improves reconstruction at every β and keeps MIG, SAP and I_m from collapsing at "
       "large β.",
}
QUERIES = {
    1: "dlbench results {dirs} --where 'lambda=0' --group model,dataset,solver,beta "
       "--metrics sap,i_m,b_norm,b_norm_ratio",
    2: "dlbench results {dirs} --where 'beta>1' --group model,dataset,solver,beta,lambda --metrics sap,i_m",
    3: "dlbench results {dirs} --where 'lambda=0' --group model,dataset,source,config_hash,beta --metrics mig,sap",
    4: "dlbench results {dirs} --group model,dataset,source,config_hash,beta,lambda "
       "--metrics reconstruction,mig,sap,i_m",
}
NEEDED_RUNS = {
    1: "the linear-Gaussian grid: `dlbench run gin/linear_gaussian.gin` (CPU preset: add gin/linear_gaussian_cpu.gin)",
    2: "the linear-Gaussian grid: `dlbench run gin/linear_gaussian.gin` (CPU preset: add gin/linear_gaussian_cpu.gin)",
    3: f"a β-VAE sweep at λ = 0 over at least {MIN_BETAS} β values (the paper's β ∈ {{1, 4, 8, 16, 32}}) with at "
       f"least {MIN_REPLICATES} seeds (the paper's 10) on dSprites, Shapes3D or MPI3D-real",
    4: f"a λβ-VAE sweep (λ ∈ {{0, 2, 4, 6, 8}}) continuing β-VAEs up to β ≥ {LARGE_BETA:g} (the paper's 32) with at "
       f"least {MIN_REPLICATES} seeds on dSprites, Shapes3D or MPI3D-real",
}
AUTHORS_MAPS = (
    "The authors' own percent-change maps (deep-protocol.md) show MIG *rising* with β up to β = 32 at λ = 0 on "
    "dSprites and Shapes3D, and peaking near β = 4 on MPI3D-real (below the β = 1 baseline at β = 32, lifted back "
    "above by λ = 8). What these records say, per study:")


@dataclass(frozen=True)
class StudyVerdict:
    study: Study
    verdict: str
    evidence: tuple[str, ...]
    scale: str
    commands: tuple[str, ...]  # how its runs were made


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    rule: str
    query: str
    verdict: str
    studies: tuple[StudyVerdict, ...]
    needed: str
    observations: tuple[str, ...] = ()


def _cell(study: Study, metric: str, beta: float, lam: float) -> tuple[float, float, int]:
    cell = (study.betas.index(beta), study.lambdas.index(lam))
    return float(study.means[metric][cell]), float(study.stds[metric][cell]), int(study.counts[metric][cell])


def _known(study: Study, metric: str, beta: float, lam: float) -> bool:
    return metric in study.means and beta in study.betas and lam in study.lambdas and \
        not np.isnan(_cell(study, metric, beta, lam)[0])


def _shown(study: Study, metric: str, beta: float, lam: float) -> str:
    mean, std, count = _cell(study, metric, beta, lam)
    return f"{mean:.4g} ± {std:.3g} (n={count})"


def is_linear(study: Study) -> bool:
    return any(name in study.means and not np.isnan(study.means[name]).all() for name in LINEAR_SCORES)


def _verdict(checks: Sequence[bool]) -> str:
    return REPRODUCED if all(checks) else NOT_REPRODUCED


def judge_collapse(study: Study) -> tuple[str, list[str]]:
    """Claim 1 on one linear study."""
    cells = [b for b in study.betas if b > 1 and _known(study, "sap", b, 0.0)]
    if not cells:
        return NOT_TESTABLE, ["no β > 1, λ = 0 cell"]
    checks, evidence = [], []
    for beta in cells:
        sap, i_m, b_norm = (_cell(study, m, beta, 0.0)[0] for m in ("sap", "i_m", "b_norm"))
        collapsed = sap <= COLLAPSED_SAP and i_m <= COLLAPSED_I_M and b_norm <= COLLAPSED_B_NORM
        line = (f"β = {beta:g}, λ = 0: SAP {_shown(study, 'sap', beta, 0.0)}, I_m {_shown(study, 'i_m', beta, 0.0)}, "
                f"‖B‖₂ {_shown(study, 'b_norm', beta, 0.0)}")
        checks.append(collapsed)
        if _known(study, "b_norm_ratio", beta, 0.0):
            ratio = _cell(study, "b_norm_ratio", beta, 0.0)[0]
            contracts = abs(ratio - 1 / beta) <= CONTRACTION_TOLERANCE / beta
            checks.append(contracts)
            line += f", ‖B_k+1‖/‖B_k‖ {_shown(study, 'b_norm_ratio', beta, 0.0)} vs 1/β = {1 / beta:.4g}"
            line += "" if contracts else " (ratio off 1/β)"
        else:
            line += ", contraction ratio not recorded by this solver"
        evidence.append(line + ("" if collapsed else " (not collapsed)"))
    return _verdict(checks), evidence


def judge_rescue(study: Study) -> tuple[str, list[str]]:
    """Claim 2 on one linear study."""
    cells = [(b, lam) for b in study.betas for lam in study.lambdas
             if b > 1 and lam > 0 and _known(study, "sap", b, lam)]
    if not cells:
        return NOT_TESTABLE, ["no β > 1, λ > 0 cell"]
    checks, evidence = [], []
    for beta, lam in cells:
        sap, i_m = _cell(study, "sap", beta, lam)[0], _cell(study, "i_m", beta, lam)[0]
        rescued = sap >= RESCUED_SAP and i_m >= RESCUED_I_M
        checks.append(rescued)
        evidence.append(f"β = {beta:g}, λ = {lam:g}: SAP {_shown(study, 'sap', beta, lam)}, "
                        f"I_m {_shown(study, 'i_m', beta, lam)}" + ("" if rescued else " (not rescued)"))
    return _verdict(checks), evidence


def _replicates_ok(study: Study, metric: str, cells: Sequence[tuple[float, float]]) -> bool:
    return all(_cell(study, metric, b, lam)[2] >= MIN_REPLICATES for b, lam in cells)


def judge_peak(study: Study) -> tuple[str, list[str]]:
    """Claim 3 on one deep study."""
    metrics = [m for m in ("mig", "sap") if any(_known(study, m, b, 0.0) for b in study.betas)]
    if not metrics:
        return NOT_TESTABLE, ["no λ = 0 cell with MIG or SAP"]
    checks, evidence = [], []
    for metric in metrics:
        betas = [b for b in study.betas if _known(study, metric, b, 0.0)]
        if len(betas) < MIN_BETAS or not _replicates_ok(study, metric, [(b, 0.0) for b in betas]):
            fewest = min(_cell(study, metric, b, 0.0)[2] for b in betas)
            return NOT_TESTABLE, [f"{HEADLINE_METRICS[metric].label} at λ = 0: {len(betas)} β values; fewest seeds "
                                  f"in a cell: {fewest}"]
        means = [_cell(study, metric, b, 0.0)[0] for b in betas]
        peak = betas[int(np.argmax(means))]
        interior = peak not in (betas[0], betas[-1])
        drop = _cell(study, metric, peak, 0.0)[0] - _cell(study, metric, betas[-1], 0.0)[0]
        noise = max(_cell(study, metric, peak, 0.0)[1], _cell(study, metric, betas[-1], 0.0)[1])
        deteriorates = interior and drop > noise
        checks.append(deteriorates)
        label = HEADLINE_METRICS[metric].label
        evidence.append(f"{label} at λ = 0 by β: " + "; ".join(f"{b:g}: {_shown(study, metric, b, 0.0)}" for b in betas)
                        + f". Peak at β = {peak:g} ({'intermediate' if interior else 'at an end of the range'}); "
                        f"drop to β = {betas[-1]:g}: {drop:.4g} vs seed std {noise:.3g}")
    return _verdict(checks), evidence


def judge_lambda(study: Study) -> tuple[str, list[str]]:
    """Claim 4 on one deep study."""
    betas = [b for b in study.betas if _known(study, "reconstruction", b, 0.0)
             and any(_known(study, "reconstruction", b, lam) for lam in study.lambdas if lam > 0)]
    if not betas:
        return NOT_TESTABLE, ["no β with both a λ = 0 and a λ > 0 cell"]
    cells = [(b, lam) for b in betas for lam in study.lambdas if _known(study, "reconstruction", b, lam)]
    if not _replicates_ok(study, "reconstruction", cells):
        return NOT_TESTABLE, [f"fewer than {MIN_REPLICATES} seeds in some cell"]
    checks, evidence = [], []
    for beta in betas:
        base = _cell(study, "reconstruction", beta, 0.0)[0]
        lower = [lam for lam in study.lambdas if lam > 0 and _known(study, "reconstruction", beta, lam)]
        better = all(_cell(study, "reconstruction", beta, lam)[0] < base for lam in lower)
        checks.append(better)
        evidence.append(f"reconstruction at β = {beta:g}: " + "; ".join(
            f"λ = {lam:g}: {_shown(study, 'reconstruction', beta, lam)}" for lam in [0.0, *lower])
            + ("" if better else " (some λ > 0 not better)"))
    largest = betas[-1]
    if largest < LARGE_BETA:
        return NOT_TESTABLE, evidence + [f"largest β with λ > 0 cells is {largest:g} < {LARGE_BETA:g}: the "
                                         "collapse at large β cannot be tested"]
    for metric in ("mig", "sap", "i_m"):
        if not _known(study, metric, largest, 0.0):
            continue
        others = [lam for lam in study.lambdas if lam > 0 and _known(study, metric, largest, lam)]
        kept = all(_cell(study, metric, largest, lam)[0] > _cell(study, metric, largest, 0.0)[0] for lam in others)
        checks.append(kept)
        evidence.append(f"{HEADLINE_METRICS[metric].label} at β = {largest:g}: " + "; ".join(
            f"λ = {lam:g}: {_shown(study, metric, largest, lam)}" for lam in [0.0, *others])
            + ("" if kept else " (some λ > 0 not above λ = 0)"))
    return _verdict(checks), evidence


def mig_trend(study: Study) -> str | None:
    """What MIG does with β at λ = 0 in one deep study, for comparison with the authors' maps."""
    betas = [b for b in study.betas if _known(study, "mig", b, 0.0)]
    if len(betas) < 2:
        return None
    means = [_cell(study, "mig", b, 0.0)[0] for b in betas]
    rising = all(later >= earlier for earlier, later in zip(means, means[1:]))
    peak = betas[int(np.argmax(means))]
    first = means[0]
    change = f"{100 * (means[-1] - first) / abs(first):+.0f} %" if first else "n/a"
    return (f"{study.title}: MIG at λ = 0 {'rises monotonically' if rising else 'does not rise monotonically'} "
            f"with β over {', '.join(f'{b:g}' for b in betas)}; peak at β = {peak:g}; β = {betas[-1]:g} vs "
            f"β = {betas[0]:g}: {change}")


@dataclass(frozen=True)
class RunDetails:
    budget: dict[str, Any]  # hyperparameters that count steps or iterations
    command: str | None  # the `dlbench run` that made the run, from its record (None: not recorded)


def run_details(run_dir: Path) -> RunDetails:
    """A run's training budget and the command that made it, as its record states them."""
    record, _ = load_record(run_dir / RECORD_FILE)
    hyperparameters = record["model"].get("hyperparameters") or {}
    budget = {key: value for key, value in sorted(hyperparameters.items())
              if ("steps" in key or "iterations" in key) and isinstance(value, (int, float))}
    files = [str(f) for f in record.get("config_files") or []]
    bindings = [f"-p {shlex.quote(str(b))}" for b in record.get("bindings") or []]
    command = " ".join(["dlbench run", *map(shlex.quote, files), *bindings, f"--seed {record['seed']}"]) \
        if files else None
    return RunDetails(budget, command)


MAX_COMMANDS = 3  # per study; the rest are counted


def _commands(study: Study, details: dict[str, RunDetails]) -> tuple[str, ...]:
    commands = list(dict.fromkeys(details[run].command for run in study.run_ids if run in details))
    shown = [f"`{command}`" if command else "no config files recorded" for command in commands[:MAX_COMMANDS]]
    return tuple(shown + ([f"and {len(commands) - MAX_COMMANDS} more"] if len(commands) > MAX_COMMANDS else []))


def _scale(study: Study, details: dict[str, RunDetails]) -> str:
    """Replicates, steps or iterations, and data source of a study."""
    counts = [int(c) for metric in study.counts for c in study.counts[metric].ravel() if c > 0]
    replicates = f"{min(counts)}–{max(counts)}" if counts and min(counts) != max(counts) \
        else str(max(counts, default=0))
    budgets = dict.fromkeys(f"{key} = {value}" for run in study.run_ids if run in details
                            for key, value in details[run].budget.items())
    kind = "starts" if is_linear(study) else "seeds"
    grid = f"β ∈ {{{', '.join(f'{b:g}' for b in study.betas)}}}, λ ∈ {{{', '.join(f'{v:g}' for v in study.lambdas)}}}"
    return (f"{kind} per cell: {replicates}; {grid}; {', '.join(budgets) or 'steps not recorded'}; "
            f"source: {source_label(study.source)}; runs: {len(study.run_ids)}")


def _overall(verdicts: Sequence[StudyVerdict]) -> str:
    judged = [v.verdict for v in verdicts if v.verdict != NOT_TESTABLE]
    if not judged:
        return NOT_TESTABLE
    return REPRODUCED if all(v == REPRODUCED for v in judged) else NOT_REPRODUCED


def evaluate_claims(all_studies: Sequence[Study], details: dict[str, RunDetails], dirs: str = "RESULT_DIRS"
                    ) -> list[Claim]:
    """Each claim's verdict per study and overall, by RULES."""
    linear = [s for s in all_studies if is_linear(s)]
    deep = [s for s in all_studies if not is_linear(s)]
    judges: dict[int, tuple[Callable[[Study], tuple[str, list[str]]], list[Study]]] = {
        1: (judge_collapse, linear), 2: (judge_rescue, linear), 3: (judge_peak, deep), 4: (judge_lambda, deep)}
    claims = []
    for number, (judge, candidates) in judges.items():
        verdicts = []
        for study in candidates:
            verdict, evidence = judge(study)
            verdicts.append(StudyVerdict(study, verdict, tuple(evidence), _scale(study, details),
                                         _commands(study, details)))
        observations = tuple(filter(None, map(mig_trend, deep))) if number == 3 else ()
        claims.append(Claim(number, TITLES[number], RULES[number], QUERIES[number].format(dirs=dirs),
                            _overall(verdicts), tuple(verdicts), NEEDED_RUNS[number], observations))
    return claims


def paper_markdown(claims: Sequence[Claim], dirs: str, warnings: Sequence[str]) -> str:
    lines = ["# The paper's claims, tested on these records", "",
             f"Built by `dlbench report paper {dirs}` from the run records under {dirs}. Each claim states the rule "
             "its verdict is computed by; the rules are fixed in dlbench/leaderboard/report.py and are not tuned to "
             "the data. A claim is judged on each β × λ study (one model on one dataset, data source and config; "
             "for the linear model, one solver) that can test it: reproduced when every such study reproduces it, "
             "not reproduced when any fails, not testable at this scale when none can. Means and standard "
             "deviations (ddof = 0) are over seeds (deep models) or random starts (linear model); n is their count.",
             "", "| claim | verdict |", "|---|---|",
             *(f"| {c.number}. {c.title} | **{c.verdict}** |" for c in claims), ""]
    if warnings:
        lines += ["Records not used:", "", *(f"- {w}" for w in warnings), ""]
    for claim in claims:
        lines += [f"## Claim {claim.number}: {claim.title}", "", f"**Verdict: {claim.verdict}.**", "",
                  f"Rule: {claim.rule}", "", "Numbers, with the command that shows them:", "",
                  f"    {claim.query}", ""]
        if not claim.studies or claim.verdict == NOT_TESTABLE:
            lines += [f"Which run would test it: {claim.needed}.", ""]
        for verdict in claim.studies:
            lines += [f"### {verdict.study.title}: {verdict.verdict}", "", f"Scale: {verdict.scale}.", "",
                      f"Made by: {'; '.join(verdict.commands)}.", "", *(f"- {line}" for line in verdict.evidence), ""]
        if claim.number == 3:
            lines += [AUTHORS_MAPS, "", *(f"- {line}" for line in claim.observations or ["no deep study with MIG"]),
                      ""]
    return "\n".join(lines).rstrip() + "\n"


def write_paper_report(result_dirs: Sequence[str | Path], out_dir: str | Path, rebuild: bool = False
                       ) -> tuple[Path, list[Claim], list[str]]:
    """Write OUT/paper.md; return its path, the claims and the warnings about records not used."""
    metrics = list(HEADLINE_METRICS)
    with Results(result_dirs, rebuild=rebuild) as results:
        metrics += [name for name in LINEAR_SCORES if name in results.score_names]
        solutions = results.solutions(metrics=metrics)
        warnings = list(results.warnings)
    details = {s.run_id: run_details(s.run_dir) for s in {s.run_id: s for s in solutions}.values()}
    dirs = " ".join(str(d) for d in result_dirs)
    claims = evaluate_claims(studies(setting_rows(solutions, metrics)), details, dirs)
    path = Path(out_dir) / "paper.md"
    text = paper_markdown(claims, dirs, warnings)
    atomic_write(path, lambda stream: stream.write(text.encode()))
    return path, claims, warnings
