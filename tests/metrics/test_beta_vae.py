import warnings

import numpy as np
import torch
from metric_test_helpers import GridDataset, LinearModel
from sklearn.linear_model import LogisticRegression

from dlbench.metrics.beta_vae import BetaVAEScore, beta_vae_accuracy, beta_vae_features


def points(rng, num):
    labels = rng.integers(0, 4, num)
    first = rng.normal(size=(num, 8, 5))
    second = rng.normal(size=(num, 8, 5))
    second[np.arange(num), :, labels] = first[np.arange(num), :, labels] + 0.9 * rng.normal(size=(num, 8))
    return first, second, labels


def test_reference_mode_equals_sklearn_exactly_and_fast_is_close(rng):
    (first, second, labels), (eval_first, eval_second, eval_labels) = points(rng, 800), points(rng, 400)
    features = np.stack([np.mean(np.abs(a - b), axis=0) for a, b in zip(first, second)])
    eval_features = np.stack([np.mean(np.abs(a - b), axis=0) for a, b in zip(eval_first, eval_second)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(random_state=0).fit(features, labels)
    ours_features = beta_vae_features(torch.from_numpy(first), torch.from_numpy(second))
    np.testing.assert_allclose(ours_features.numpy(), features, rtol=0, atol=1e-15)
    arguments = (ours_features, torch.from_numpy(labels), torch.from_numpy(eval_features),
                 torch.from_numpy(eval_labels))
    reference = [a.item() for a in beta_vae_accuracy(*arguments)]
    assert reference == [model.score(features, labels), model.score(eval_features, eval_labels)]
    fast = [a.item() for a in beta_vae_accuracy(*arguments, mode="fast")]
    # Measured: identical accuracies (0.70625 train, 0.695 eval) though lbfgs stops at 100 iterations.
    assert max(abs(r - f) for r, f in zip(reference, fast)) <= 0.01


def test_identity_codes_score_high():
    result = BetaVAEScore(num_train=400, num_eval=200, random_seed=0)(
        LinearModel(np.eye(3)), GridDataset((5, 6, 4)), generator=torch.Generator())
    assert result["train_accuracy"] >= 0.9 and result["eval_accuracy"] >= 0.9
    assert result["provenance"]["mode"] == "reference" and result["provenance"]["protocol"] == "dlib"
