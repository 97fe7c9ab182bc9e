"""Every built-in metric, built through the registry, passes dlbench's conformance kit on a batched model."""
import functools

import torch

from dlbench import create_dataset, create_metric
from dlbench.testing import MetricUnderTest, ModelUnderTest, parametrize_with_checks

SETTINGS = {
    "mig": dict(num_train=300), "i_m": dict(num_train=300), "unsupervised": dict(num_train=300),
    "sap_score": dict(num_train=300, num_test=150, mode="fast"),
    "dci": dict(num_train=120, num_test=60, mode="fast"),
    "modularity_explicitness": dict(num_train=300, num_test=150, mode="fast"),
    "factor_vae_score": dict(num_train=60, num_eval=30, batch_size=16, num_variance_estimate=300),
    "beta_vae_score": dict(num_train=60, num_eval=30, batch_size=16, mode="fast"),
}


class Projection:
    """Codes are two fixed random projections of the pixels: a batched model with a replicate axis."""
    name = "projection"
    solution_axes = {"start": [0, 1]}
    replicate_axes = ("start",)

    def fit(self, dataset, context):
        generator = torch.Generator().manual_seed(context.seed)
        pixels = int(torch.tensor(dataset.observation_shape).prod())
        self.weight = torch.randn(2, 4, pixels, generator=generator, dtype=torch.float64)

    def representation(self, observations):
        return observations.flatten(1).to(torch.float64) / 255 @ self.weight.mT

    def hyperparameters(self):
        return {"latents": 4}

    def state_dict(self):
        return {"weight": self.weight}

    def load_state_dict(self, state):
        self.weight = state["weight"]


DSPRITES = functools.partial(create_dataset, "dsprites", source="procedural", factor_sizes=(1, 3, 3, 4, 4, 4))


@parametrize_with_checks([
    MetricUnderTest(functools.partial(create_metric, name, **settings), ModelUnderTest(Projection, DSPRITES),
                    name=name)
    for name, settings in SETTINGS.items()])
def test_builtin_metrics_conform(subject, check, tmp_path):
    check(subject, tmp_path)
