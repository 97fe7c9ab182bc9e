import numpy as np
import torch
from metric_test_helpers import GridDataset, LinearModel, numpy_discretize, numpy_mutual_info

from dlbench.metrics.unsupervised import (
    Unsupervised,
    active_units,
    gaussian_total_correlation,
    kl_per_latent,
    mean_pairwise_mutual_info,
)


def test_scores_equal_brute_force(rng):
    codes = rng.normal(size=(2000, 5)) @ rng.normal(size=(5, 5))
    covariance = np.cov(codes.T)
    expected_tc = 0.5 * (np.sum(np.log(np.diag(covariance))) - np.linalg.slogdet(covariance)[1])
    mutual_info = numpy_mutual_info(numpy_discretize(codes), numpy_discretize(codes))
    np.fill_diagonal(mutual_info, 0)
    tensor = torch.from_numpy(codes)
    assert abs(gaussian_total_correlation(tensor).item() - expected_tc) < 1e-9
    assert abs(mean_pairwise_mutual_info(tensor).item() - mutual_info.sum() / 20) < 1e-9


def test_constant_code_adds_no_total_correlation_and_is_inactive(rng):
    codes = np.c_[rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 3)), 0.05 * rng.normal(size=2000)]
    with_constant = torch.from_numpy(np.c_[codes, np.full(2000, 7.0)])
    assert abs(gaussian_total_correlation(with_constant).item()
               - gaussian_total_correlation(torch.from_numpy(codes)).item()) < 1e-12
    assert active_units(with_constant).item() == 3


def test_kl_per_latent(rng):
    mean, log_variance = rng.normal(size=(1000, 3)), rng.normal(size=(1000, 3))
    expected = 0.5 * np.mean(mean ** 2 + np.exp(log_variance) - log_variance - 1, axis=0)
    np.testing.assert_allclose(kl_per_latent(torch.from_numpy(mean), torch.from_numpy(log_variance)).numpy(),
                               expected, rtol=1e-12)


class PosteriorModel(LinearModel):
    def posterior_parameters(self, observations):
        mean = self.representation(observations)
        return mean, torch.full_like(mean, -1.0)


def test_metric_uses_the_posterior_when_the_model_has_one():
    metric = Unsupervised(protocol="dlib", num_train=500, random_seed=0)
    plain = metric(LinearModel(np.eye(4)), GridDataset(), generator=torch.Generator())
    with_posterior = metric(PosteriorModel(np.eye(4)), GridDataset(), generator=torch.Generator())
    assert "kl_per_latent" not in plain and len(with_posterior["kl_per_latent"]) == 4
    assert with_posterior["gaussian_total_correlation"] == plain["gaussian_total_correlation"]
    assert plain["active_units"] == 4
