import numpy as np
import torch
from metric_test_helpers import draw_factors, realistic_codes
from sklearn.linear_model import LogisticRegression

from dlbench.metrics.classifiers import fit_logistic_regression, logistic_regression_logits

CLASS_COUNTS = (3, 4, 5, 2)  # metric_test_helpers' factor sizes: a binary problem among multinomial ones


def test_fast_fit_is_the_optimum_sklearn_approaches(rng):
    factors = draw_factors(1500, rng)
    codes = realistic_codes(factors, rng, noise=0.5)
    coefficients, present = fit_logistic_regression(torch.from_numpy(codes), torch.from_numpy(factors.T.copy()),
                                                    CLASS_COUNTS)
    assert coefficients.shape == (4, 5, 7) and present.sum(-1).tolist() == list(CLASS_COUNTS)
    for problem, count in enumerate(CLASS_COUNTS):
        # Run to convergence, scikit-learn's lbfgs reaches the same penalised optimum.
        model = LogisticRegression(tol=1e-12, max_iter=10000).fit(codes, factors[:, problem])
        ours = coefficients[problem, :count].numpy()
        if count == 2:  # one decision function; class 0 stays at zero
            np.testing.assert_array_equal(ours[0], 0)
            ours = ours[1:]
        # Measured: under 5e-7 apart, all of it scikit-learn's: its gradient there is ~1e-8, ours ~1e-16.
        np.testing.assert_allclose(ours[:, :-1], model.coef_, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours[:, -1], model.intercept_, rtol=0, atol=1e-6)


def test_fast_logits_batch_solutions_and_pad_missing_classes(rng):
    factors = draw_factors(600, rng)
    codes = torch.from_numpy(realistic_codes(factors, rng))
    solutions = torch.stack([codes, 2 * codes + 1])
    labels = torch.from_numpy(factors.T.copy())
    arguments = dict(mode="fast", seed=0)
    (batched,) = logistic_regression_logits(solutions, labels, CLASS_COUNTS, [solutions[:, :50]], **arguments)
    (single,) = logistic_regression_logits(solutions[1], labels, CLASS_COUNTS, [solutions[1, :50]], **arguments)
    (reference,) = logistic_regression_logits(solutions[1], labels, CLASS_COUNTS, [solutions[1, :50]],
                                              mode="reference", seed=0)
    assert batched.shape == (2, 4, 50, 5)
    torch.testing.assert_close(batched[1], single, rtol=0, atol=1e-9)
    for problem, count in enumerate(CLASS_COUNTS):
        assert torch.isneginf(single[problem, :, count:]).all() and torch.isneginf(reference[problem, :, count:]).all()
    # Measured: probabilities 8e-4 apart at most (lbfgs stops at tolerance 1e-4).
    torch.testing.assert_close(single.softmax(-1), reference.softmax(-1), rtol=0, atol=5e-3)
