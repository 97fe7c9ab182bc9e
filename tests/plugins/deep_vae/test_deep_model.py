"""The deep models: the conformance kit for every one, the λβ protocol (β stage, then a fresh Adam per λ), the shared
stage cache, model.init_from, and bad settings refused in one line."""
from __future__ import annotations

import functools
import json

import pytest
import torch
from cli_helpers import assert_one_line_failure
from deep_test_helpers import tiny_lbvae_gin

from dlbench import FitContext, TrainingSettings, create_dataset, records
from dlbench.cli import main
from dlbench.testing import ModelUnderTest, parametrize_with_checks
from dlbench_deep_vae import stages
from dlbench_deep_vae.models.annealed_vae import annealed_vae
from dlbench_deep_vae.models.beta_tc_vae import beta_tc_vae
from dlbench_deep_vae.models.beta_vae import beta_vae
from dlbench_deep_vae.models.dip_vae import dip_vae_i, dip_vae_ii
from dlbench_deep_vae.models.factor_vae import factor_vae
from dlbench_deep_vae.models.lambda_beta_vae import lambda_beta_vae

SMALL_GRID = (1, 3, 2, 4, 6, 6)
TINY = TrainingSettings(batch_size=8, training_steps=6, num_latent=3)
DSPRITES = functools.partial(create_dataset, "dsprites", source="procedural", factor_sizes=SMALL_GRID)


@pytest.fixture(autouse=True)
def private_stage_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_CACHE_DIR", str(tmp_path / "cache"))


def tiny(factory, **grid):
    return ModelUnderTest(lambda: factory(**grid, log_every=3, checkpoint_every=3, cache_stages=False), DSPRITES,
                          training=TINY, name=factory.__name__)


# The default suite runs the kit on the paper's two models and on FactorVAE (two optimiser groups); the other
# objectives differ from the β-VAE only in their regularizer, each tested against its formula and by a short training
# run in test_objectives.py, so their kit runs are slow-marked.
@parametrize_with_checks([
    tiny(beta_vae, betas=[1, 8], seeds=[0]),
    tiny(lambda_beta_vae, betas=[4], lambdas=[0, 2], seeds=[0, 1], beta_steps=6),
    tiny(factor_vae, gammas=[10], seeds=[0, 1]),
])
def test_deep_models_conform(subject, check, tmp_path):
    check(subject, tmp_path)


@pytest.mark.slow
@parametrize_with_checks([
    tiny(beta_tc_vae, betas=[1, 6], seeds=[0]),
    tiny(dip_vae_i, lambda_ods=[1, 5], seeds=[0]),
    tiny(dip_vae_ii, lambda_ods=[2], seeds=[0]),
    tiny(annealed_vae, c_maxes=[5, 25], seeds=[0], iteration_threshold=4),
])
def test_the_other_zoo_models_conform(subject, check, tmp_path):
    check(subject, tmp_path)


def fit(model, path, training=TINY, seed=0):
    context = FitContext("cpu", seed, path, progress=False, training=training)
    model.fit(DSPRITES(), context)
    return context


def test_the_lambda_stage_starts_from_the_beta_vae_weights_with_a_fresh_adam(tmp_path, monkeypatch):
    problems = {}
    real_train_stack = stages.train_stack

    def spy(problem, plan, dataset, context):
        problems[plan.name.split("-")[0]] = (problem, plan)
        outcome = real_train_stack(problem, plan, dataset, context)
        problems[plan.name.split("-")[0] + "_outcome"] = outcome
        return outcome

    monkeypatch.setattr(stages, "train_stack", spy)
    steps_seen = []
    context = FitContext("cpu", 0, tmp_path / "fit", progress=False, training=TINY,
                         after_checkpoint=lambda: steps_seen.append(_adam_steps(tmp_path / "fit")))
    model = lambda_beta_vae(betas=[1, 8], lambdas=[0, 4], seeds=[0], beta_steps=6, checkpoint_every=3)
    model.fit(DSPRITES(), context)
    beta_problem, beta_plan = problems["beta_vae_stage"]
    lambda_problem, lambda_plan = problems["lambda_beta_vae_continuation"]
    beta_outcome = problems["beta_vae_stage_outcome"]
    assert beta_plan.steps == 6 and lambda_plan.steps == 6
    start = lambda_problem.build(list(range(4))).state_dict()
    for cell, (beta_index, _lam) in enumerate([(0, 0), (0, 4), (1, 0), (1, 4)]):
        for name, value in start.items():
            assert torch.equal(value[cell], beta_outcome.parameters[name][beta_index]), (cell, name)
    assert lambda_problem.values["lambda"].tolist() == [0, 4, 0, 4] and "lambda" not in beta_problem.values
    assert beta_problem.objective.model == "beta_vae" and lambda_problem.objective.model == "lambda_beta_vae"
    # Adam's step count restarts with the λ stage: its first checkpoint (step 3) holds 3 steps, not 6 + 3.
    lambda_counts = [count for stage, count in steps_seen if stage == "lambda_beta_vae_continuation"]
    assert lambda_counts and lambda_counts[0] == 3


def _adam_steps(workdir):
    """(stage, Adam's step count) of the newest in-progress stack checkpoint."""
    newest = max((p for p in workdir.glob("*.stack*.pt") if ".done" not in p.name), key=lambda p: p.stat().st_mtime,
                 default=None)
    if newest is None:
        return (None, None)
    state = torch.load(newest, weights_only=True)["state"]
    return newest.name.split("-")[0].split(".")[0], int(state["optimizers"]["model"]["state"][0]["step"])


def test_the_stage_cache_is_reused_and_missed_when_an_input_changes(tmp_path):
    first = fit(lambda_beta_vae(betas=[1, 8], lambdas=[0, 2], seeds=[0], beta_steps=6), tmp_path / "a")
    assert len(first.telemetry["notes"]["stages"]["trained"]) == 2
    again = fit(lambda_beta_vae(betas=[8, 16], lambdas=[0, 4], seeds=[0], beta_steps=6), tmp_path / "b")
    noted = again.telemetry["notes"]["stages"]
    assert [c["beta"] for c in noted["reused"]] == [8.0] and [c["beta"] for c in noted["trained"]] == [16.0]
    # Every input of a β stage is part of its key: change one and it is trained again.
    variants = [(lambda_beta_vae(betas=[8], lambdas=[0], seeds=[0], beta_steps=7), TINY),
                (lambda_beta_vae(betas=[8], lambdas=[0], seeds=[0], beta_steps=6, learning_rate=3e-4),
                 TINY),
                (lambda_beta_vae(betas=[8], lambdas=[0], seeds=[0], beta_steps=6, architecture="dlib_conv"),
                 TINY),
                (lambda_beta_vae(betas=[8], lambdas=[0], seeds=[1], beta_steps=6), TINY),
                (lambda_beta_vae(betas=[8], lambdas=[0], seeds=[0], beta_steps=6),
                 TrainingSettings(batch_size=16, training_steps=6, num_latent=3)),
                (lambda_beta_vae(betas=[8], lambdas=[0], seeds=[0], beta_steps=6),
                 TrainingSettings(batch_size=8, training_steps=6, num_latent=4))]
    for variant, (model, training) in enumerate(variants):
        changed = fit(model, tmp_path / f"changed{variant}", training)
        assert len(changed.telemetry["notes"]["stages"]["trained"]) == 1
    # The beta_vae with the same steps shares the cache: its run trains nothing.
    shared = fit(beta_vae(betas=[1], seeds=[0]), tmp_path / "shared", TrainingSettings(8, 6, 3))
    assert not shared.telemetry["notes"]["stages"]["trained"]
    # Another objective over the same axis values is another solution.
    other = fit(beta_tc_vae(betas=[1], seeds=[0], architecture="paper"), tmp_path / "other", TrainingSettings(8, 6, 3))
    assert len(other.telemetry["notes"]["stages"]["trained"]) == 1


def test_a_change_to_the_datasets_code_misses_the_cache(tmp_path, monkeypatch):
    fit(beta_vae(betas=[1], seeds=[0]), tmp_path / "a", TrainingSettings(8, 6, 3))
    again = fit(beta_vae(betas=[1], seeds=[0]), tmp_path / "b", TrainingSettings(8, 6, 3))
    assert not again.telemetry["notes"]["stages"]["trained"]
    monkeypatch.setattr(stages, "dataset_fingerprint", lambda dataset: "renderer changed")
    changed = fit(beta_vae(betas=[1], seeds=[0]), tmp_path / "c", TrainingSettings(8, 6, 3))
    assert len(changed.telemetry["notes"]["stages"]["trained"]) == 1


GIN = tiny_lbvae_gin(training_steps=6, beta_steps=6, log_every=3)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "lbvae.gin"
    path.write_text(GIN)
    return path


@pytest.mark.parametrize("binding, expected", [
    ("lambda_beta_vae.betas = [0, 4]", "lambda_beta_vae.betas = [0, 4] is not accepted"),
    ("lambda_beta_vae.betas = [-1]", "lambda_beta_vae.betas"),
    ("lambda_beta_vae.lambdas = [-2]", "lambda_beta_vae.lambdas = [-2] is not accepted"),
    ("lambda_beta_vae.lambdas = []", "lambda_beta_vae.lambdas = [] is not accepted"),
    ("lambda_beta_vae.seeds = []", "lambda_beta_vae.seeds = [] is not accepted"),
    ("lambda_beta_vae.seeds = [1.5]", "lambda_beta_vae.seeds"),
    ("encoder.num_latent = 0", "encoder.num_latent = 0 is not accepted"),
    ("model.batch_size = 100000", "model.batch_size = 100000 is not accepted; expected at most the dataset's 864"),
    ("model.batch_size = 0", "model.batch_size = 0 is not accepted"),
    ("lambda_beta_vae.architecture = 'resnet'", "lambda_beta_vae.architecture = 'resnet' is not accepted"),
    ("lambda_beta_vae.likelihood = 'poisson'", "lambda_beta_vae.likelihood = 'poisson' is not accepted"),
    ("model.training_steps = 1e999", "model.training_steps = inf is not accepted"),
    ("model.init_from = '/no/such/run'", "no record.json"),
    ("dataset.name = 'linear_gaussian'\ndataset.source = 'auto'", "needs a discrete dataset of 64x64 images"),
])
def test_bad_deep_settings_fail_in_one_line_writing_nothing(tmp_path, config, capsys, binding, expected):
    assert_one_line_failure(["run", config, "--out", tmp_path / "runs", "--quiet", "-p", binding], tmp_path, capsys,
                            expected)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*"))


def test_init_from_starts_the_lambda_stage_from_a_beta_vae_run_and_refuses_what_does_not_match(tmp_path, config,
                                                                                                capsys):
    source_bindings = ["-p", "model.name = 'beta_vae'", "-p", "beta_vae.betas = [1, 8]", "-p", "beta_vae.seeds = [0]"]
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet", *source_bindings]) == 0
    (source,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    continued = ["-p", "lambda_beta_vae.betas = [8]", "-p", f"model.init_from = '{source}'"]
    assert main(["run", str(config), "--out", str(tmp_path / "more"), "--quiet", *continued]) == 0
    (run_dir,) = [p for p in (tmp_path / "more").iterdir() if p.is_dir()]
    record = records.read_record(run_dir)
    assert record["model"]["hyperparameters"]["init_from"] == str(source)
    assert {point["stage"] for point in record["fit"]["history"]} == {"lambda_beta_vae_continuation"}
    for binding, expected in [("lambda_beta_vae.architecture = 'dlib_conv'",
                               "its architecture is 'paper' and this model's architecture 'dlib_conv'"),
                              ("lambda_beta_vae.betas = [2]", "has no solution beta = 2"),
                              ("lambda_beta_vae.beta_steps = 7",
                               "its training_steps is 6 and this model's beta_steps 7"),
                              ("encoder.num_latent = 4", "its num_latent is 3 and this model's num_latent 4")]:
        assert_one_line_failure(["run", config, "--out", tmp_path / "other", "--quiet", *continued, "-p", binding],
                                tmp_path, capsys, expected)
    (lambda_source,) = [p for p in (tmp_path / "more").iterdir() if p.is_dir()]
    assert_one_line_failure(["run", config, "--out", tmp_path / "other", "--quiet", "-p",
                             f"model.init_from = '{lambda_source}'"], tmp_path, capsys,
                            "is a run of 'lambda_beta_vae', not accepted; expected a run of 'beta_vae'")
    assert_one_line_failure(["run", config, "--out", tmp_path / "other", "--quiet", *source_bindings, "-p",
                             f"model.init_from = '{source}'"], tmp_path, capsys,
                            "model.init_from is not accepted by beta_vae")


def test_a_run_records_history_training_scores_and_figures(tmp_path, config, capsys):
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet", "--plot"]) == 0
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    record = records.read_record(run_dir)
    assert record["solution_axes"] == {"beta": [1.0, 8.0], "lambda": [0.0, 2.0], "seed": [0]}
    assert record["replicate_axes"] == ["seed"]
    training = record["metrics"]["training"]["values"]
    assert torch.tensor(training["reconstruction"]).shape == (2, 2, 1)
    assert torch.tensor(training["kl_per_latent"]).shape == (2, 2, 1, 3)
    stage_names = {point["stage"].split("-")[0] for point in record["fit"]["history"]}
    assert stage_names == {"beta_vae_stage", "lambda_beta_vae_continuation"}
    assert json.dumps(record["fit"]["notes"]["stages"]["trained"])
    figures = {p.name for p in (run_dir / "figures").iterdir()}
    assert {"training_curves.png", "kl_per_latent.png", "active_latents.png", "reconstructions.png",
            "traversals_beta8_lambda2.png"} <= figures
    from matplotlib.image import imread

    assert imread(run_dir / "figures" / "kl_per_latent.png").std() > 0.01  # a figure with something drawn on it
    printed = capsys.readouterr().out
    assert "training.reconstruction" in printed and "mig.mig" in printed
