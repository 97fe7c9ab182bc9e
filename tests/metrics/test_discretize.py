import numpy as np
import pytest
import torch
from metric_test_helpers import numpy_discretize

from dlbench.metrics.discretize import class_labels, histogram_bins, labels_against


@pytest.mark.parametrize("make_codes", [
    lambda rng: rng.normal(size=(3000, 5)),
    lambda rng: rng.integers(0, 7, size=(3000, 5)).astype(np.float64),  # many ties, values on edges
    lambda rng: np.exp(rng.normal(size=(3000, 5)) * 5),  # heavy tails
    lambda rng: (rng.normal(size=(3000, 5)) * 1e-9 + 1e6),  # tiny range far from 0
])
def test_bins_equal_numpy_histogram_and_digitize(rng, make_codes):
    codes = make_codes(rng)
    np.testing.assert_array_equal(histogram_bins(torch.from_numpy(codes)).numpy() + 1, numpy_discretize(codes))


def test_constant_code_and_float32_codes(rng):
    codes = np.c_[np.full(100, 3.5), rng.normal(size=100)]
    assert histogram_bins(torch.from_numpy(codes))[:, 0].unique().numel() == 1
    single = rng.normal(size=(500, 3)).astype(np.float32)
    # Float32 codes are binned after an exact cast to float64, like numpy on the float64 array.
    np.testing.assert_array_equal(histogram_bins(torch.from_numpy(single)).numpy() + 1,
                                  numpy_discretize(single.astype(np.float64)))


def test_batched_codes_are_binned_per_solution(rng):
    codes = torch.from_numpy(rng.normal(size=(2, 3, 400, 4)))
    bins = histogram_bins(codes)
    assert torch.equal(bins[1, 2], histogram_bins(codes[1, 2]))


def test_class_labels_relabel_each_factor_densely():
    factors = torch.tensor([[5, -1], [7, -1], [5, 3]])
    labels, num_classes = class_labels(factors)
    assert labels.tolist() == [[0, 0], [1, 0], [0, 1]] and num_classes == 2


def test_continuous_factors_are_histogram_binned(rng):
    factors = rng.normal(size=(1000, 2))
    labels, num_classes = class_labels(torch.from_numpy(factors))
    assert num_classes <= 20
    for column, expected in zip(labels.T.numpy(), numpy_discretize(factors).T):
        assert len(np.unique(column)) == len(np.unique(expected))


def test_labels_against_marks_unseen_test_values():
    classes, train, test = labels_against(torch.tensor([2, 4, 4, 9]), torch.tensor([4, 3, 9, 10]))
    assert classes.tolist() == [2, 4, 9] and train.tolist() == [0, 1, 1, 2] and test.tolist() == [1, -1, 2, -1]
