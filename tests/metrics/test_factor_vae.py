import numpy as np
import pytest
import torch
from metric_test_helpers import ContinuousDataset, GridDataset, LinearModel

from dlbench.errors import ConfigError
from dlbench.metrics.factor_vae import FactorVAEScore, factor_vae_votes, majority_vote_accuracy


def test_votes_equal_a_per_vote_numpy_loop(rng):
    batches = rng.normal(size=(300, 16, 5)) * np.array([1.0, 0.5, 0.01, 2.0, 1.0])
    fixed = rng.integers(0, 4, 300)
    global_variance = np.array([1.0, 0.3, 1e-4, 4.0, 0.8])
    expected = np.zeros((4, 5), dtype=np.int64)
    active = np.sqrt(global_variance) >= 0.05
    for batch, factor in zip(batches, fixed):
        ratio = np.var(batch, axis=0, ddof=1) / global_variance
        expected[factor, np.flatnonzero(active)[np.argmin(ratio[active])]] += 1
    votes = factor_vae_votes(torch.from_numpy(batches), torch.from_numpy(fixed), torch.from_numpy(global_variance), 4)
    np.testing.assert_array_equal(votes.numpy(), expected)
    classifier = np.argmax(expected, axis=0)
    train, _ = majority_vote_accuracy(votes, votes)
    assert train.item() == expected[classifier, np.arange(5)].sum() / expected.sum()


def test_identity_and_zero_codes():
    dataset = GridDataset((5, 6, 4))
    metric = FactorVAEScore(num_train=300, num_eval=200, num_variance_estimate=1000, random_seed=0)
    identity = metric(LinearModel(np.eye(3)), dataset, generator=torch.Generator())
    assert identity["train_accuracy"] >= 0.9 and identity["eval_accuracy"] >= 0.9
    zeros = metric(LinearModel(np.zeros((3, 3))), dataset, generator=torch.Generator())
    assert zeros["eval_accuracy"] == 0.0 and zeros["num_active_dims"] == 0
    assert identity["provenance"]["seed"] == 0 and identity["provenance"]["batch_size"] == 64


def test_batched_model_scores_every_solution():
    result = FactorVAEScore(num_train=100, num_eval=50, num_variance_estimate=500, random_seed=1)(
        LinearModel(np.eye(3), batched=True), GridDataset((5, 6, 4)), generator=torch.Generator())
    assert len(result["train_accuracy"]) == 2 and result["num_active_dims"] == [3, 3]


def test_refuses_continuous_dataset_and_paper_protocol():
    with pytest.raises(ConfigError, match="factor_vae_score needs a dataset with a discrete factor grid"):
        FactorVAEScore(num_train=10)(LinearModel(np.eye(3)), ContinuousDataset(), generator=torch.Generator())
    with pytest.raises(ConfigError,
                       match="factor_vae_score.protocol = 'paper' is not accepted; expected one of 'dlib'"):
        FactorVAEScore(protocol="paper")
