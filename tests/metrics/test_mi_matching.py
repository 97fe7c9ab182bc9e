import numpy as np
import pytest
import torch
from metric_test_helpers import draw_factors, numpy_discretize, numpy_mutual_info, realistic_codes
from scipy.optimize import linear_sum_assignment

from dlbench.metrics.mi_matching import mi_matching


def brute_force_i_m(codes, factors):
    mutual_info = numpy_mutual_info(numpy_discretize(codes), factors)
    rows, columns = linear_sum_assignment(-mutual_info)
    return mutual_info[rows, columns].sum()


@pytest.mark.parametrize("num_codes", [3, 6])  # fewer codes than factors, and more
def test_equals_brute_force(rng, num_codes):
    factors = draw_factors(3000, rng)
    for codes in (rng.normal(size=(3000, num_codes)), realistic_codes(factors, rng, num_codes=num_codes)):
        got = mi_matching(torch.from_numpy(codes), torch.from_numpy(factors)).item()
        assert abs(got - brute_force_i_m(codes, factors)) < 1e-9


def test_permuting_codes_leaves_it_unchanged_and_identity_matches_entropy(rng):
    factors = draw_factors(3000, rng)
    codes = realistic_codes(factors, rng)
    score = mi_matching(torch.from_numpy(codes), torch.from_numpy(factors)).item()
    permuted = mi_matching(torch.from_numpy(codes[:, [3, 0, 5, 1, 4, 2]]), torch.from_numpy(factors)).item()
    assert abs(score - permuted) < 1e-12
    identity = mi_matching(torch.from_numpy(factors.astype(float)), torch.from_numpy(factors)).item()
    assert abs(identity - np.log(3 * 4 * 5 * 2)) < 0.01  # Σ_j H_j for uniform factors
