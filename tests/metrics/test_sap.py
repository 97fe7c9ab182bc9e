import warnings

import numpy as np
import pytest
import torch
from metric_test_helpers import draw_factors, realistic_codes
from sklearn.svm import LinearSVC

from dlbench.errors import DataError
from dlbench.metrics.sap import sap, sap_score_matrix


def brute_force_matrix(codes, factors, test_codes, test_factors):
    """disentanglement_lib's `compute_score_matrix` (discrete factors)."""
    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            classifier = LinearSVC(C=0.01, class_weight="balanced").fit(codes[:, [i]], factors[:, j])
            matrix[i, j] = np.mean(classifier.predict(test_codes[:, [i]]) == test_factors[:, j])
    return matrix


def top_two_gap(matrix):
    ordered = np.sort(matrix, axis=0)
    return np.mean(ordered[-1] - ordered[-2])


def split(rng, num=2000, num_test=1000, structured=True, **kwargs):
    factors, test_factors = draw_factors(num, rng), draw_factors(num_test, rng)
    if structured:
        return (realistic_codes(factors, rng, **kwargs), factors,
                realistic_codes(test_factors, rng, **kwargs), test_factors)
    return rng.normal(size=(num, 6)), factors, rng.normal(size=(num_test, 6)), test_factors


def tensors(*arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


@pytest.fixture(autouse=True)
def quiet_liblinear():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's ConvergenceWarning at its default max_iter
        yield


@pytest.mark.parametrize("structured", [False, True])
def test_reference_mode_equals_brute_force_exactly(rng, structured):
    arrays = split(rng, structured=structured)
    matrix = sap_score_matrix(*tensors(*arrays)[:1], *tensors(arrays[1]), *tensors(arrays[2], arrays[3])).numpy()
    np.testing.assert_array_equal(matrix, brute_force_matrix(*arrays))
    assert sap(*tensors(*arrays)).item() == top_two_gap(brute_force_matrix(*arrays))


def test_fast_mode_is_close_to_reference_on_realistic_codes(rng):
    # Measured here (5,000 + 2,000 samples): identical score matrices. The fast solver reaches the
    # optimum (coefficients within 1e-13 of liblinear run to tol 1e-12); liblinear's default stop
    # at tolerance 1e-4 can only move a threshold across a sample, hence the margin.
    arrays = tensors(*split(rng, num=5000, num_test=2000, noise=1.0))
    reference, fast = (sap_score_matrix(*arrays[:2], *arrays[2:], mode=mode) for mode in ("reference", "fast"))
    assert (reference - fast).abs().max().item() <= 0.005
    assert abs(sap(*arrays).item() - sap(*arrays, mode="fast").item()) <= 0.003


def test_fast_mode_handles_batched_solutions(rng):
    codes, factors, test_codes, test_factors = tensors(*split(rng, num=800, num_test=400))
    batched = sap(torch.stack([codes, -codes]), factors, torch.stack([test_codes, -test_codes]), test_factors,
                  mode="fast")
    assert batched.shape == (2,)
    assert batched[0].item() == sap(codes, factors, test_codes, test_factors, mode="fast").item()


def test_continuous_scores_equal_squared_correlation(rng):
    factors = rng.normal(size=(2000, 3))
    codes = np.c_[factors @ rng.normal(size=(3, 4)) + rng.normal(size=(2000, 4)), np.full(2000, 2.0)]
    expected = np.zeros((5, 3))
    for i in range(5):
        for j in range(3):
            covariance = np.cov(codes[:, i], factors[:, j])
            expected[i, j] = (covariance[0, 1] ** 2 / (covariance[0, 0] * covariance[1, 1])
                              if covariance[0, 0] > 1e-12 else 0)
    got = sap_score_matrix(*tensors(codes, factors), continuous_factors=True).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert abs(sap(*tensors(codes, factors), continuous_factors=True).item() - top_two_gap(expected)) < 1e-12


def test_closed_form_and_invariance(rng):
    codes, factors, test_codes, test_factors = split(rng)
    # As in disentanglement_lib's own test, the identity case is the R² score on class indices: with
    # SVM accuracies a useless code still scores chance (1/2 for binary factors), capping the gap,
    # and a C = 0.01 one-vs-rest linear SVM on one code cannot separate 3+ ordered classes.
    identity = sap(*tensors(factors.astype(float), factors), continuous_factors=True).item()
    binary = draw_factors(2000, rng, sizes=(2, 2, 2))
    accuracies = sap_score_matrix(*tensors(binary.astype(float), binary, binary.astype(float), binary))
    zeros = sap(*tensors(np.zeros((2000, 4)), factors, np.zeros((1000, 4)), test_factors)).item()
    assert identity >= 0.9 and torch.equal(accuracies.diagonal(), torch.ones(3, dtype=torch.float64)) and zeros <= 0.2
    order = [2, 0, 1, 5, 4, 3]
    for mode in ("reference", "fast"):
        assert sap(*tensors(codes[:, order], factors, test_codes[:, order], test_factors), mode=mode).item() == \
            sap(*tensors(codes, factors, test_codes, test_factors), mode=mode).item()


def test_non_finite_test_codes_are_refused(rng):
    codes, factors, test_codes, test_factors = split(rng, num=100, num_test=50)
    test_codes[3, 3] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        sap(*tensors(codes, factors, test_codes, test_factors))
