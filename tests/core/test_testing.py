import pytest
import torch

from dlbench.testing import (
    ModelUnderTest,
    check_determinism,
    check_model,
    check_resume,
    check_state_validation,
    dataset_checks,
    model_checks,
    parametrize_with_checks,
)
from dlbench_linear_gaussian.instance import linear_gaussian
from dlbench_linear_gaussian.model import linear_gaussian_vae


def small_model():
    return linear_gaussian_vae(betas=[4], lambdas=[0, 2], num_starts=2, num_latent=3,
                               max_half_steps=400)


def test_the_linear_plugin_conforms(tmp_path):
    dataset = linear_gaussian(n=8, s=2, seed=1)
    model = check_model(small_model, dataset, tmp_path)
    assert model.solution_shape == (1, 1, 2, 2)


class WrongShape:
    """Forgets the observation axis: codes (d,) instead of (num, d)."""
    name = "wrong_shape"
    solution_axes = {}
    replicate_axes = ()

    def fit(self, dataset, context):
        self.weight = torch.ones(2, dataset.observation_shape[0], dtype=torch.float64)

    def representation(self, observations):
        return (observations @ self.weight.T).sum(0)

    def hyperparameters(self):
        return {"width": 2}

    def state_dict(self):
        return {"weight": self.weight}

    def load_state_dict(self, state):
        self.weight = state["weight"]


class ForgetsState(WrongShape):
    name = "forgets_state"

    def representation(self, observations):
        return observations @ self.weight.T

    def load_state_dict(self, state):
        self.weight = torch.zeros_like(state["weight"])


class NotAModel:
    name = "not_a_model"


@pytest.mark.parametrize("factory, complaint", [
    (WrongShape, r"representation has shape \(2,\); expected \(16,\) \+ \(d,\)"),
    (ForgetsState, "restored from its state_dict gives a different representation"),
    (NotAModel, "lacks members of dlbench.interfaces.Model"),
])
def test_nonconforming_models_fail_with_the_contract_named(tmp_path, factory, complaint):
    with pytest.raises(AssertionError, match=complaint):
        check_model(factory, linear_gaussian(n=8, s=2, seed=1), tmp_path)


class Checkpointed:
    """A conforming toy model with a two-stage fit that checkpoints after its first stage."""
    name = "checkpointed"
    solution_axes = {"start": [0, 1]}
    replicate_axes = ("start",)

    def fit(self, dataset, context):
        generator = torch.Generator().manual_seed(context.seed)
        stage = context.load_checkpoint("stage1")
        if stage is None:
            stage = {"weight": torch.randn(2, 3, dataset.observation_shape[0], generator=generator,
                                           dtype=torch.float64), "generator": generator.get_state()}
            context.save_checkpoint("stage1", stage)
        generator.set_state(stage["generator"])
        self.weight = stage["weight"] + self.second_stage(generator)

    def second_stage(self, generator):
        return torch.randn(2, 3, 1, generator=generator, dtype=torch.float64)

    def representation(self, observations):
        return observations.to(torch.float64) @ self.weight.mT

    def hyperparameters(self):
        return {"stages": 2}

    def state_dict(self):
        return {"weight": self.weight}

    def load_state_dict(self, state):
        from dlbench import check_state_entry

        self.weight = check_state_entry(state, "weight", (2, 3, None), torch.float64, owner=self.name)


class ResumesDifferently(Checkpointed):
    """Forgets to restore its generator after a resume, so the second stage draws other numbers."""
    name = "resumes_differently"

    def fit(self, dataset, context):
        generator = torch.Generator().manual_seed(context.seed)
        stage = context.load_checkpoint("stage1")
        if stage is None:
            stage = {"weight": torch.randn(2, 3, dataset.observation_shape[0], generator=generator,
                                           dtype=torch.float64)}
            context.save_checkpoint("stage1", stage)
        self.weight = stage["weight"] + self.second_stage(generator)


class NotDeterministic(Checkpointed):
    """Draws from the global generator instead of one seeded from context.seed."""
    name = "not_deterministic"

    def second_stage(self, generator):
        return torch.randn(2, 3, 1, dtype=torch.float64)


class AcceptsAnyState(Checkpointed):
    name = "accepts_any_state"

    def load_state_dict(self, state):
        self.weight = state["weight"]


def tiny_dataset():
    return linear_gaussian(n=5, s=2, seed=0)


@pytest.mark.parametrize("model_class, check, complaint", [
    (ResumesDifferently, check_resume, "resumed from its checkpoint gives a different representation"),
    (NotDeterministic, check_determinism, "same seed give different representations"),
    (AcceptsAnyState, check_state_validation, "load_state_dict accepted 'weight'"),
])
def test_the_kit_catches_each_broken_contract(tmp_path, model_class, check, complaint):
    with pytest.raises(AssertionError, match=complaint):
        check(ModelUnderTest(model_class, tiny_dataset), tmp_path)


def test_a_model_that_never_checkpoints_is_told_it_cannot_resume(tmp_path):
    with pytest.raises(AssertionError, match="saved no checkpoint"):
        check_resume(ModelUnderTest(WrongShape, tiny_dataset), tmp_path)


@parametrize_with_checks([
    ModelUnderTest(Checkpointed, tiny_dataset),
    ModelUnderTest(ResumesDifferently, tiny_dataset, known_failures={"check_resume": "forgets its generator"}),
])
def test_parametrize_with_checks_runs_every_check_with_known_failures_as_strict_xfails(subject, check, tmp_path):
    check(subject, tmp_path)


def test_checks_are_chosen_by_capability():
    names = [check.__name__ for check in model_checks(small_model())]
    assert {"check_exact_metrics", "check_posterior", "check_resume", "check_state_validation"} <= set(names)
    assert "check_exact_metrics" not in [check.__name__ for check in model_checks(Checkpointed())]
    grid = dataset_checks(tiny_dataset())
    assert "check_discrete_grid" not in [check.__name__ for check in grid]
