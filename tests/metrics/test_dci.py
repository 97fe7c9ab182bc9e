import math

import numpy as np
import pytest
import scipy.stats
import torch
from metric_test_helpers import draw_factors, realistic_codes
from sklearn.ensemble import GradientBoostingClassifier

from dlbench.errors import ConfigError
from dlbench.metrics.dci import completeness, dci, disentanglement, importance_matrix


def brute_force_dci(importance):
    """disentanglement_lib's `disentanglement` and `completeness`."""
    per_code = 1 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    per_factor = 1 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
    weights = np.ones_like(importance) if importance.sum() == 0 else importance
    return (np.sum(per_code * weights.sum(1) / weights.sum()), np.sum(per_factor * weights.sum(0) / weights.sum()))


def test_one_code_for_two_of_ten_equiprobable_factors():
    importance = torch.zeros(10, 10, dtype=torch.float64)
    importance[0, :2] = 0.5
    assert abs(disentanglement(importance).item() - (1 - math.log(2) / math.log(10))) < 1e-9


@pytest.mark.parametrize("shape", [(6, 4), (3, 8)])
def test_scores_equal_brute_force_on_random_importances(rng, shape):
    importance = rng.random(shape) ** 3
    got = disentanglement(torch.from_numpy(importance)).item(), completeness(torch.from_numpy(importance)).item()
    np.testing.assert_allclose(got, brute_force_dci(importance), rtol=0, atol=1e-12)
    np.testing.assert_allclose([disentanglement(torch.zeros(shape, dtype=torch.float64)).item()],
                               [brute_force_dci(np.zeros(shape))[0]], atol=1e-12)


def splits(rng, num, num_test, noise=0.3):
    factors, test_factors = draw_factors(num, rng), draw_factors(num_test, rng)
    return [torch.from_numpy(a) for a in (realistic_codes(factors, rng, noise=noise), factors,
                                          realistic_codes(test_factors, rng, noise=noise), test_factors)]


def test_reference_mode_equals_sklearn_exactly(rng):
    codes, factors, test_codes, test_factors = splits(rng, 600, 300)
    importance, train_accuracy, test_accuracy = importance_matrix(codes, factors, test_codes, test_factors, seed=3)
    for j in range(factors.shape[1]):
        model = GradientBoostingClassifier(random_state=3).fit(codes.numpy(), factors[:, j].numpy())
        np.testing.assert_array_equal(importance[:, j].numpy(), model.feature_importances_)
        assert train_accuracy[j].item() == np.mean(model.predict(codes.numpy()) == factors[:, j].numpy())
        assert test_accuracy[j].item() == np.mean(model.predict(test_codes.numpy()) == test_factors[:, j].numpy())


@pytest.mark.slow
def test_fast_mode_is_close_to_reference_on_realistic_codes(rng):
    # Measured on 3,000 + 1,000 samples: importances within 0.0097 per entry; disentanglement
    # 0.537 vs 0.0082 apart, completeness 0.0064, informativeness train 0.0098 / test 0.0027
    # (255-bin histogram split search instead of the exact one).
    arrays = splits(rng, 3000, 1000)
    reference, fast = dci(*arrays), dci(*arrays, mode="fast")
    for name in ("disentanglement", "completeness", "informativeness_train", "informativeness_test"):
        assert abs(reference[name].item() - fast[name].item()) <= 0.02, name


def test_fast_mode_closed_form_cases(rng):
    factors, test_factors = draw_factors(1500, rng), draw_factors(500, rng)
    identity = dci(*map(torch.from_numpy, (factors.astype(float), factors, test_factors.astype(float), test_factors)),
                   mode="fast")
    assert identity["disentanglement"].item() >= 0.9 and identity["informativeness_test"].item() == 1.0
    zeros = dci(*map(torch.from_numpy, (np.zeros((1500, 4)), factors, np.zeros((500, 4)), test_factors)), mode="fast")
    assert zeros["disentanglement"].item() <= 0.2


def test_continuous_factors_are_refused(rng):
    codes = torch.from_numpy(rng.normal(size=(50, 3)))
    with pytest.raises(ConfigError, match="dci needs discrete factors"):
        dci(codes, codes, codes, codes)
