import warnings

import numpy as np
import pytest
import torch
from metric_test_helpers import draw_factors, numpy_discretize, numpy_mutual_info, realistic_codes
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from dlbench.metrics.modularity import explicitness, mean_roc_auc, modularity


def brute_force_modularity(codes, factors):
    squared = numpy_mutual_info(numpy_discretize(codes), factors) ** 2
    largest = squared.max(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = 1 - (squared.sum(1) - largest) / (largest * (squared.shape[1] - 1))
    score[largest == 0] = 0
    return score.mean()


@pytest.mark.parametrize("structured", [False, True])
def test_modularity_equals_brute_force(rng, structured):
    factors = draw_factors(3000, rng)
    codes = realistic_codes(factors, rng) if structured else rng.normal(size=(3000, 6))
    codes[:, 0] = 1.5  # a constant code scores 0
    assert abs(modularity(torch.from_numpy(codes), torch.from_numpy(factors)).item()
               - brute_force_modularity(codes, factors)) < 1e-9


def test_modularity_closed_form(rng):
    factors = draw_factors(3000, rng, sizes=(10, 10, 10))
    assert modularity(torch.from_numpy(factors.astype(float)), torch.from_numpy(factors)).item() >= 0.9
    assert modularity(torch.zeros(3000, 3, dtype=torch.float64), torch.from_numpy(factors)).item() <= 0.2


def test_auc_equals_sklearn_with_ties(rng):
    labels = rng.integers(0, 4, 500)
    scores = np.round(rng.random((500, 4)) + 0.3 * np.eye(4)[labels], 1)  # rounded: many ties
    expected = roc_auc_score(MultiLabelBinarizer().fit_transform(labels[:, None]), scores)
    assert abs(mean_roc_auc(torch.from_numpy(scores), torch.from_numpy(labels)).item() - expected) < 1e-12


def test_explicitness_reference_equals_brute_force_and_fast_is_close(rng):
    factors, test_factors = draw_factors(1500, rng), draw_factors(700, rng)
    codes, test_codes = realistic_codes(factors, rng, noise=1.0), realistic_codes(test_factors, rng, noise=1.0)
    mean, deviation = codes.mean(0), codes.std(0)
    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(factors.shape[1]):
            model = LogisticRegression().fit((codes - mean) / deviation, factors[:, j])
            expected.append([roc_auc_score(MultiLabelBinarizer().fit_transform(y[:, None]),
                                           model.predict_proba((x - mean) / deviation))
                             for x, y in ((codes, factors[:, j]), (test_codes, test_factors[:, j]))])
    arrays = [torch.from_numpy(a) for a in (codes, factors, test_codes, test_factors)]
    reference = [score.item() for score in explicitness(*arrays)]
    np.testing.assert_allclose(reference, np.mean(expected, 0), rtol=0, atol=1e-9)
    fast = [score.item() for score in explicitness(*arrays, mode="fast")]
    # Measured: under 1e-5 apart (lbfgs stops at 100 iterations / tolerance 1e-4; fast runs to the optimum).
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-4)
