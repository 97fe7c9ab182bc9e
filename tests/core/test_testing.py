import pytest
import torch

from dlbench.testing import check_model
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
