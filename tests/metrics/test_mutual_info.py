import numpy as np
import torch
from metric_test_helpers import draw_factors, numpy_discretize, numpy_mutual_info, realistic_codes
from sklearn.metrics import mutual_info_score

from dlbench.metrics.mutual_info import code_factor_mutual_info, factor_information


def test_all_pairs_equal_sklearn_per_pair_on_random_and_structured_codes(rng):
    factors = draw_factors(2000, rng, sizes=(3, 10, 40, 2))
    for codes in (rng.normal(size=(2000, 7)), realistic_codes(factors, rng, num_codes=7)):
        expected = numpy_mutual_info(numpy_discretize(codes), factors)
        got = code_factor_mutual_info(torch.from_numpy(codes), torch.from_numpy(factors)).numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        assert expected.max() > 0.05  # a check that could fail


def test_entropy_equals_sklearn_self_information(rng):
    factors = draw_factors(1000, rng, sizes=(3, 10, 1))
    expected = [mutual_info_score(factor, factor) for factor in factors.T]
    entropy = factor_information(torch.from_numpy(factors), torch.zeros(1000, 2, dtype=torch.float64))[1]
    np.testing.assert_allclose(entropy.numpy(), expected, atol=1e-12)


def test_batched_codes_give_one_matrix_per_solution(rng):
    factors = torch.from_numpy(draw_factors(500, rng))
    codes = torch.from_numpy(rng.normal(size=(2, 500, 3)))
    batched = code_factor_mutual_info(codes, factors)
    assert batched.shape == (2, 3, 4)
    torch.testing.assert_close(batched[1], code_factor_mutual_info(codes[1], factors), rtol=0, atol=1e-12)
