"""The paper report's verdicts on records built to reproduce each claim, built not to, and too small to say."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from dlbench.leaderboard import add_commands
from dlbench.leaderboard.fixtures import deep_record, linear_record, write_run
from dlbench.leaderboard.report import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, write_paper_report

BETAS, LAMBDAS, SEEDS = [1.0, 4.0, 8.0, 16.0, 32.0], [0.0, 2.0, 8.0], [0, 1, 2]
B = np.array(BETAS)[:, None, None]
L = np.array(LAMBDAS)[None, :, None]


def deep_scores(mig_at_lambda0: np.ndarray, recon_gain: float, seed: int) -> dict[str, np.ndarray]:
    """MIG (and SAP, I_m, in proportion) per β at λ = 0, lifted by 50 % where λ > 0; reconstruction growing
    with β and changed by `recon_gain` per unit of λ; small seed noise."""
    noise = 0.002 * np.random.default_rng(seed).standard_normal((len(BETAS), len(LAMBDAS), len(SEEDS)))
    mig = mig_at_lambda0[:, None, None] * np.where(L > 0, 1.5, 1.0) + noise
    return {"mig.mig": mig, "sap_score.sap": mig / 2 + noise, "i_m.i_m": 3 * mig + noise,
            "training.reconstruction": 50 + 5 * np.log2(B) + recon_gain * L + noise}


PEAKED = np.array([0.10, 0.40, 0.30, 0.15, 0.05])  # the paper's shape: a peak at β = 4
RISING = np.array([0.10, 0.15, 0.20, 0.25, 0.30])  # the authors' dSprites / Shapes3D maps at λ = 0


def linear_exact(collapse_ratio_of_beta, collapsed_sap: float, rescued_sap: float) -> dict[str, np.ndarray]:
    shape = (1, len(BETAS), len(LAMBDAS), 4)
    betas = np.array(BETAS)[None, :, None, None]
    lambdas = np.array(LAMBDAS)[None, None, :, None]
    collapsed = (betas > 1) & (lambdas == 0)
    return {"sap": np.where(collapsed, collapsed_sap, rescued_sap) + np.zeros(shape),
            "i_m": np.where(collapsed, 1e-12, 1.1) + np.zeros(shape),
            "b_norm": np.where(collapsed, 1e-7, 0.2) + np.zeros(shape),
            "b_norm_ratio": np.where(collapsed, collapse_ratio_of_beta(betas), 1.0) + np.zeros(shape),
            "nll": np.where(collapsed, 8.26, -1.0) + np.zeros(shape), "no_minimiser": np.zeros(shape, bool)}


def verdicts(claims) -> dict[int, str]:
    return {claim.number: claim.verdict for claim in claims}


def test_data_built_to_reproduce(tmp_path):
    runs = tmp_path / "runs"
    made = deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -1.0, 0))
    made.update(config_files=["gin/lambda_beta_vae.gin"], bindings=["model.training_steps = 200000"])
    write_run(runs, made)
    write_run(runs, deep_record("mpi3d", "procedural", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -2.0, 1)))
    write_run(runs, linear_record(BETAS, LAMBDAS, 4, linear_exact(lambda beta: 1 / beta, 1e-13, 0.15)))
    path, claims, warnings = write_paper_report([runs], tmp_path / "board")
    assert warnings == []
    assert verdicts(claims) == {1: REPRODUCED, 2: REPRODUCED, 3: REPRODUCED, 4: REPRODUCED}
    assert [len(c.studies) for c in claims] == [1, 1, 2, 2]
    text = path.read_text()
    assert text.count("**Verdict: reproduced.**") == 4
    assert f"dlbench results {runs} --where 'lambda=0' --group model,dataset,source,config_hash,beta" in text
    assert "Rule: At λ = 0, for each of MIG and SAP" in text
    assert "seeds per cell: 3; β ∈ {1, 4, 8, 16, 32}, λ ∈ {0, 2, 8}; beta_steps = 150000, training_steps = 50000; " \
        "source: official" in text
    assert "source: official" in text and "source: stand-in (procedural)" in text
    assert "starts per cell: 4; β ∈ {1, 4, 8, 16, 32}, λ ∈ {0, 2, 8}; max_half_steps = 100000; source: synthetic" \
        in text
    assert "Peak at β = 4 (intermediate)" in text
    assert "Made by: `dlbench run gin/lambda_beta_vae.gin -p 'model.training_steps = 200000' --seed 0`." in text
    assert "Made by: no config files recorded." in text
    assert "MIG at λ = 0 does not rise monotonically with β" in text  # against the authors' own maps


def test_data_built_not_to_reproduce(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, deep_record("dsprites", "official", BETAS, LAMBDAS, SEEDS, deep_scores(RISING, +1.0, 0)))
    # ‖B‖ ratio 1/2 whatever β, SAP of the collapsed cells 0.2, of the λ > 0 cells 0.01.
    write_run(runs, linear_record(BETAS, LAMBDAS, 4, linear_exact(lambda beta: 0.5 + 0 * beta, 0.2, 0.01)))
    path, claims, _ = write_paper_report([runs], tmp_path / "board")
    assert verdicts(claims) == {1: NOT_REPRODUCED, 2: NOT_REPRODUCED, 3: NOT_REPRODUCED, 4: NOT_REPRODUCED}
    text = path.read_text()
    assert "(not collapsed)" in text and "(ratio off 1/β)" in text and "(not rescued)" in text
    assert "Peak at β = 32 (at an end of the range)" in text
    assert "(some λ > 0 not better)" in text
    assert "MIG at λ = 0 rises monotonically with β over 1, 4, 8, 16, 32; peak at β = 32" in text


def test_one_failing_study_is_enough_to_not_reproduce(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, deep_record("mpi3d", "official", BETAS, LAMBDAS, SEEDS, deep_scores(PEAKED, -1.0, 0)))
    write_run(runs, deep_record("shapes3d", "official", BETAS, LAMBDAS, SEEDS, deep_scores(RISING, -1.0, 1)))
    _, claims, _ = write_paper_report([runs], tmp_path / "board")
    peak = claims[2]
    assert peak.verdict == NOT_REPRODUCED
    assert sorted((v.study.dataset, v.verdict) for v in peak.studies) == [("mpi3d", REPRODUCED),
                                                                         ("shapes3d", NOT_REPRODUCED)]
    assert claims[3].verdict == REPRODUCED


def test_what_cannot_be_tested_says_so_and_which_run_would(tmp_path):
    runs = tmp_path / "runs"
    # One seed, and β only up to 8: the deep claims cannot be judged; no linear records at all.
    write_run(runs, deep_record("dsprites", "procedural", BETAS[:3], LAMBDAS, [0], {
        name: values[:3, :, :1] for name, values in deep_scores(PEAKED, -1.0, 0).items()}))
    path, claims, _ = write_paper_report([runs], tmp_path / "board")
    assert verdicts(claims) == {n: NOT_TESTABLE for n in (1, 2, 3, 4)}
    text = path.read_text()
    assert text.count("Which run would test it:") == 4
    assert "`dlbench run gin/linear_gaussian.gin`" in text and "with at least 2 seeds" in text
    assert "MIG at λ = 0: 3 β values; fewest seeds in a cell: 1" in text


def test_large_beta_needed_for_the_collapse_part(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, deep_record("dsprites", "official", BETAS[:3], LAMBDAS, SEEDS, {
        name: values[:3] for name, values in deep_scores(PEAKED, -1.0, 0).items()}))
    _, claims, _ = write_paper_report([runs], tmp_path / "board")
    assert claims[3].verdict == NOT_TESTABLE
    assert "largest β with λ > 0 cells is 8 < 16" in claims[3].studies[0].evidence[-1]


@pytest.mark.parametrize("rebuild", [False, True])
def test_report_command(tmp_path, capsys, rebuild):
    runs = tmp_path / "runs"
    write_run(runs, linear_record(BETAS, LAMBDAS, 4, linear_exact(lambda beta: 1 / beta, 1e-13, 0.15)))
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["report", "paper", str(runs), "--out", str(tmp_path / "board")]
                             + (["--rebuild"] if rebuild else []))
    assert args.handler(args) == 0
    output = capsys.readouterr().out
    assert "claim 1: reproduced" in output and "claim 3: not testable at this scale" in output
    assert (tmp_path / "board" / "paper.md").is_file()
