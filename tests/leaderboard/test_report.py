"""The paper report's verdict rules on synthetic records: data built to reproduce each claim and built not to; a
toy-scale study is not testable; a difference inside the seed spread is no difference; a study whose starts did
not converge does not decide; and every printed `dlbench results` command prints the numbers under it."""
from __future__ import annotations

import argparse
import re
import shlex

import numpy as np
import pytest

from dlbench.cli import main
from dlbench.leaderboard import add_commands
from dlbench.leaderboard.fixtures import deep_record, linear_record, write_run
from dlbench.leaderboard.report import write_paper_report
from dlbench.leaderboard.verdicts import NO_DIFFERENCE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED

BETAS, LAMBDAS, SEEDS = [1.0, 4.0, 8.0, 16.0, 32.0], [0.0, 2.0, 8.0], [0, 1, 2, 3, 4, 5]
B = np.array(BETAS)[:, None, None]
L = np.array(LAMBDAS)[None, :, None]
STARTS = 5


def deep_scores(mig_at_lambda0: np.ndarray, recon_gain: float, seed: int, noise: float = 0.002
                ) -> dict[str, np.ndarray]:
    """MIG (and SAP, I_m, in proportion) per β at λ = 0, lifted by 50 % where λ > 0; reconstruction growing
    with β and changed by `recon_gain` per unit of λ; seed noise of standard deviation `noise` (alternating in sign
    over the seeds, from `seed`'s sign on, so every cell's mean is exact)."""
    signs = (-1.0) ** (np.arange(len(SEEDS)) + seed)
    jitter = noise * np.broadcast_to(signs, (len(BETAS), len(LAMBDAS), len(SEEDS)))
    mig = mig_at_lambda0[:, None, None] * np.where(L > 0, 1.5, 1.0) + jitter
    return {"mig.mig": mig, "sap_score.sap": mig / 2 + jitter, "i_m.i_m": 3 * mig + jitter,
            "training.reconstruction": 50 + 5 * np.log2(B) + recon_gain * L + jitter}


PEAKED = np.array([0.10, 0.40, 0.30, 0.15, 0.05])  # the paper's shape: a peak at β = 4
RISING = np.array([0.10, 0.15, 0.20, 0.25, 0.30])  # the authors' dSprites / Shapes3D maps at λ = 0


def linear_exact(collapse_ratio_of_beta, collapsed_sap: float, rescued_sap: float, solvers: int = 1
                 ) -> dict[str, np.ndarray]:
    shape = (solvers, len(BETAS), len(LAMBDAS), STARTS)
    betas = np.array(BETAS)[None, :, None, None]
    lambdas = np.array(LAMBDAS)[None, None, :, None]
    collapsed = (betas > 1) & (lambdas == 0)
    return {"sap": np.where(collapsed, collapsed_sap, rescued_sap) + np.zeros(shape),
            "i_m": np.where(collapsed, 1e-12, 1.1) + np.zeros(shape),
            "b_norm": np.where(collapsed, 1e-7, 3.0) + np.zeros(shape),
            "b_norm_ratio": np.where(collapsed, collapse_ratio_of_beta(betas), 1.0) + np.zeros(shape),
            "nll": np.where(collapsed, 8.26, -1.0) + np.zeros(shape), "no_minimiser": np.zeros(shape, bool),
            "converged": np.ones(shape, bool)}


def reproducing_linear() -> dict[str, np.ndarray]:
    return linear_exact(lambda beta: 1 / beta, 1e-13, 0.15)


def verdicts(judgements) -> dict[int, str]:
    return {judgement.claim.number: judgement.verdict for judgement in judgements}


def parts(judgement) -> list[str]:
    return list(judgement.parts)


def test_data_built_to_reproduce(tmp_path):
    runs = tmp_path / "runs"
    made = deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -1.0, 0))
    made.update(config_files=["gin/lbvae_dsprites.gin"], bindings=["model.training_steps = 50000"])
    write_run(runs, made)
    write_run(runs, deep_record("mpi3d_real", "official", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -2.0, 1)))
    write_run(runs, linear_record(BETAS, LAMBDAS, STARTS, reproducing_linear()))
    path, judgements, warnings = write_paper_report([runs], tmp_path / "board")
    assert warnings == []
    assert verdicts(judgements) == {1: REPRODUCED, 2: REPRODUCED, 3: REPRODUCED, 4: REPRODUCED}
    assert [parts(j) for j in judgements] == [[REPRODUCED] * 2, [REPRODUCED], [REPRODUCED] * 2, [REPRODUCED] * 2]
    assert [len(j.studies) for j in judgements] == [1, 1, 2, 2]
    text = path.read_text()
    assert "Made by: `dlbench run gin/lbvae_dsprites.gin -p 'model.training_steps = 50000' --seed 0`." in text
    assert "Made by: no config files recorded." in text
    assert "Scale: 200,000 steps (beta_steps 150,000 + training_steps 50,000), 100 % of the protocol's 200,000; " \
           "6 seeds; cpu; official data" in text
    assert "β = 4 (peak) vs β = 1: " in text and "as claimed" in text
    assert "MIG at λ = 0 does not rise monotonically with β" in text  # against the authors' own maps


def test_data_built_not_to_reproduce(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, deep_scores(RISING, +1.0, 0)))
    # ‖B‖ ratio 1/2 whatever β, SAP of the collapsed cells 0.2, of the λ > 0 cells 0.01.
    write_run(runs, linear_record(BETAS, LAMBDAS, STARTS, linear_exact(lambda beta: 0.5 + 0 * beta, 0.2, 0.01)))
    path, judgements, _ = write_paper_report([runs], tmp_path / "board")
    assert verdicts(judgements) == {1: NOT_REPRODUCED, 2: NOT_REPRODUCED, 3: NOT_REPRODUCED, 4: NOT_REPRODUCED}
    assert parts(judgements[3]) == [NOT_REPRODUCED, REPRODUCED]  # parts judged separately: λ still lifts MIG
    text = path.read_text()
    assert "(not collapsed)" in text and "(off 1/β)" in text and "(not rescued)" in text
    assert "β = 32 (peak, at an end of the range) vs β = 16 (best intermediate)" in text
    assert "contrary to the claim" in text


@pytest.mark.parametrize("source, seeds, steps, reason", [
    ("procedural", SEEDS, (150_000, 50_000), "stand-in (procedural) data, not the official dataset"),
    ("official", SEEDS[:2], (150_000, 50_000), "2 seeds per setting, fewer than the 5 needed"),
    ("official", SEEDS, (2_000, 500), "2,500 steps (beta_steps 2,000 + training_steps 500), 1.25 % of the "
                                      "protocol's 200,000: below the 50 % needed"),
])
def test_a_toy_scale_study_is_not_testable(tmp_path, source, seeds, steps, reason):
    runs = tmp_path / "runs"
    scores = {name: values[..., :len(seeds)] for name, values in deep_scores(PEAKED, -1.0, 0).items()}
    write_run(runs, deep_record("dsprites", source, BETAS, LAMBDAS, seeds, scores, beta_steps=steps[0],
                                training_steps=steps[1]))
    path, judgements, _ = write_paper_report([runs], tmp_path / "board")
    assert verdicts(judgements) == {1: NOT_TESTABLE, 2: NOT_TESTABLE, 3: NOT_TESTABLE, 4: NOT_TESTABLE}
    for judgement in judgements[2:]:
        (study,) = judgement.studies
        assert all(part.lines[0] == f"not testable: {reason}" for part in study.parts)
        assert any("Welch t" in line for part in study.parts for line in part.lines)  # the numbers still shown
    text = path.read_text()
    assert "No study of linear_gaussian_vae in these records." in text
    assert "What a proper test needs: 3 runs, 750 solutions, beta_steps 150,000 + training_steps 50,000, the paper's " \
           "protocol (deep-protocol.md) per solution: 60,000,000 model-steps in all." in text
    assert "dlbench data prepare mpi3d_real && dlbench run gin/lbvae_mpi3d.gin -p 'dataset.source = \"official\"'" \
        in text


def test_a_difference_inside_the_seed_spread_is_no_difference(tmp_path):
    runs = tmp_path / "runs"
    # λ lowers reconstruction by 0.01 per unit and lifts MIG by half (MIG 0.02 to 0.03 at β = 32), under seed noise
    # of 0.3: nothing is clear.
    write_run(runs, deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS,
                                deep_scores(PEAKED / 10, -0.01, 0, noise=0.3)))
    _, judgements, _ = write_paper_report([runs], tmp_path / "board")
    assert parts(judgements[3]) == [NO_DIFFERENCE, NO_DIFFERENCE] and judgements[3].verdict == NO_DIFFERENCE
    assert judgements[2].verdict == NO_DIFFERENCE
    lines = [line for part in judgements[3].studies[0].parts for line in part.lines]
    assert lines and all(line.endswith(": no difference") for line in lines)


def test_a_non_converged_study_does_not_decide(tmp_path):
    runs = tmp_path / "runs"
    # Two solvers in one record: the fixed-point one reproduces; the AdamW one's numbers would contradict the claims,
    # but none of its starts converged.
    exact = {name: np.concatenate([reproducing_linear()[name], values[1:]]) for name, values in
             linear_exact(lambda beta: 0.5 + 0 * beta, 0.2, 0.01, solvers=2).items()}
    exact["converged"][1] = False
    write_run(runs, linear_record(BETAS, LAMBDAS, STARTS, exact, solvers=("fixed_point", "adamw")))
    path, judgements, _ = write_paper_report([runs], tmp_path / "board")
    assert verdicts(judgements)[1] == REPRODUCED and verdicts(judgements)[2] == REPRODUCED
    adamw = [study for judgement in judgements[:2] for study in judgement.studies if ("solver", "adamw") in
             study.study.fixed]
    assert len(adamw) == 2 and all(part.verdict == NOT_TESTABLE for study in adamw for part in study.parts)
    assert f"β = 32, λ = 8: left out, {STARTS}/{STARTS} not converged" in path.read_text()


def test_one_contradicting_study_is_enough_to_not_reproduce(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, deep_record("mpi3d_real", "official", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -1.0, 0)))
    write_run(runs, deep_record("shapes3d", "official", BETAS, LAMBDAS, SEEDS, deep_scores(RISING, -1.0, 1)))
    _, judgements, _ = write_paper_report([runs], tmp_path / "board")
    peak = judgements[2]
    assert peak.verdict == NOT_REPRODUCED
    assert sorted((j.study.dataset, j.parts[0].verdict) for j in peak.studies) == [("mpi3d_real", REPRODUCED),
                                                                                   ("shapes3d", NOT_REPRODUCED)]
    assert judgements[3].verdict == REPRODUCED


def test_every_printed_command_prints_the_numbers_under_it(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_run(runs, deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -1.0, 0)))
    write_run(runs, linear_record(BETAS, LAMBDAS, STARTS, reproducing_linear()))
    _, judgements, _ = write_paper_report([runs], tmp_path / "board")
    checked = 0
    for judged in (study for judgement in judgements for study in judgement.studies):
        argv = shlex.split(judged.command)
        assert argv[:2] == ["dlbench", "results"]
        assert main(argv[1:]) == 0
        output = capsys.readouterr().out
        numbers = {n for part in judged.parts for line in part.lines for n in re.findall(r"\S+ ± \S+", line)}
        assert numbers
        for number in numbers:
            assert number in output, (judged.command, number)
            checked += 1
    assert checked > 30


@pytest.mark.parametrize("rebuild", [False, True])
def test_report_command(tmp_path, capsys, rebuild):
    runs = tmp_path / "runs"
    write_run(runs, linear_record(BETAS, LAMBDAS, STARTS, reproducing_linear()))
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["report", "paper", str(runs), "--out", str(tmp_path / "board")]
                             + (["--rebuild"] if rebuild else []))
    assert args.handler(args) == 0
    output = capsys.readouterr().out
    assert "claim 1: reproduced" in output and "claim 3: not testable at this scale" in output
    assert (tmp_path / "board" / "paper.md").is_file()
