import numpy as np
import pytest
import torch
from metric_test_helpers import draw_factors, numpy_discretize, numpy_mutual_info, realistic_codes
from sklearn.metrics import mutual_info_score

from dlbench.errors import DataError
from dlbench.metrics.mig import mig


def brute_force_mig(codes, factors):
    """disentanglement_lib's `_compute_mig`, written out in numpy / scikit-learn."""
    mutual_info = numpy_mutual_info(numpy_discretize(codes), factors)
    entropy = np.array([mutual_info_score(factor, factor) for factor in factors.T])
    ordered = np.sort(mutual_info, axis=0)[::-1]
    return np.mean((ordered[0] - ordered[1]) / entropy)


def score(codes, factors):
    return mig(torch.as_tensor(codes), torch.as_tensor(factors)).item()


@pytest.mark.parametrize("structured", [False, True])
def test_equals_brute_force(rng, structured):
    factors = draw_factors(3000, rng)
    codes = realistic_codes(factors, rng) if structured else rng.normal(size=(3000, 6))
    assert abs(score(codes, factors) - brute_force_mig(codes, factors)) < 1e-9


def test_closed_form_cases(rng):
    factors = draw_factors(5000, rng, sizes=(10, 10, 10, 10))
    identity = factors.astype(np.float64)
    assert 0.9 <= score(identity, factors) <= 1.0
    assert score(np.zeros((5000, 4)), factors) <= 0.2
    assert score(np.c_[identity[:, :1], identity[:, :1]], factors[:, :1]) <= 0.1


def test_invariant_to_code_permutation_and_rescaling(rng):
    factors = draw_factors(2000, rng)
    codes = realistic_codes(factors, rng)
    reference = score(codes, factors)
    assert abs(score(codes[:, ::-1].copy(), factors) - reference) < 1e-12
    rescaled = codes * np.array([3.0, 0.01, 1, 1, 1, 1]) + np.array([5.0, -2, 0, 0, 0, 0])
    assert abs(score(rescaled, factors) - reference) < 1e-12


def test_constant_code_carries_no_information(rng):
    factors = draw_factors(2000, rng)
    codes = np.c_[realistic_codes(factors, rng), np.full(2000, 4.2)]
    assert abs(score(codes, factors) - brute_force_mig(codes, factors)) < 1e-9


def test_factor_with_one_value_is_skipped(rng):
    factors = draw_factors(2000, rng)
    codes = realistic_codes(factors, rng)
    with_constant = np.c_[factors, np.zeros(2000, dtype=np.int64)]
    assert abs(score(codes, with_constant) - brute_force_mig(codes, factors)) < 1e-12
    with pytest.raises(DataError, match="none of the 1 factors varies"):
        score(codes, np.zeros((2000, 1), dtype=np.int64))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_codes_are_refused(rng, bad):
    codes = rng.normal(size=(100, 3))
    codes[5, 1] = bad
    with pytest.raises(DataError, match="1 NaN or infinite values"):
        score(codes, draw_factors(100, rng))


def test_needs_two_codes(rng):
    with pytest.raises(DataError, match="at least 2"):
        score(rng.normal(size=(100, 1)), draw_factors(100, rng))


def test_continuous_factors_are_discretised_like_codes(rng):
    factors = rng.normal(size=(3000, 3))
    codes = factors @ rng.normal(size=(3, 5)) + 0.5 * rng.normal(size=(3000, 5))
    assert abs(score(codes, factors) - brute_force_mig(codes, numpy_discretize(factors))) < 1e-9


def test_batched_solutions_score_separately(rng):
    factors = torch.from_numpy(draw_factors(1000, rng))
    codes = torch.from_numpy(rng.normal(size=(2, 3, 1000, 4)))
    scores = mig(codes, factors)
    assert scores.shape == (2, 3) and abs(scores[1, 2].item() - mig(codes[1, 2], factors).item()) < 1e-15
