"""Logistic regression as scikit-learn's `LogisticRegression()` defines it, in two modes.

Several problems share one feature matrix (one label set each, e.g. one per factor) and are fitted
together. `reference` fits scikit-learn's estimator per problem (and per solution) with its default
settings (lbfgs, C = 1, at most 100 iterations, tolerance 1e-4). `fast` minimises the same objective
in torch on the data's device: mean cross-entropy + ||W||² / (2 C N), intercept unpenalised,
binomial for two classes and multinomial otherwise. It takes damped Newton steps on all problems
and solutions at once, in float64 with analytic gradient and Hessian, until every gradient entry is
below 1e-10, so it differs from `reference` only where lbfgs stops early.
"""
from __future__ import annotations

from typing import Sequence

import torch

from dlbench.metrics.base import estimator_seed, per_solution

INVERSE_REGULARISATION = 1.0  # scikit-learn's C
GRADIENT_TOLERANCE = 1e-10
MAX_NEWTON_STEPS = 100
MAX_STEP_HALVINGS = 50
SUFFICIENT_DECREASE = 1e-4  # Armijo's constant
# A rise of the objective this small (relative) is rounding, not a worse point: near the optimum
# the full Newton step's true decrease falls below it, and halving would only stall convergence.
OBJECTIVE_ROUNDING = 1e-12


def _num_columns(num_classes: Sequence[int]) -> int:
    """Logit columns shared by all problems: the most classes, and two for a binary model's pair."""
    return max(max(num_classes), 2)


def _padded_logits(decisions: torch.Tensor, num_columns: int) -> torch.Tensor:
    """scikit-learn's decision functions (n, 1) or (n, K) as logits (n, num_columns): a binary
    model's class 0 gets logit 0, so argmax and softmax work alike for all class counts, and
    classes beyond K get -inf, so problems with different class counts stack."""
    if decisions.shape[-1] == 1:
        decisions = torch.cat([torch.zeros_like(decisions), decisions], -1)
    return torch.nn.functional.pad(decisions, (0, num_columns - decisions.shape[-1]), value=-torch.inf)


def _with_intercept(features: torch.Tensor) -> torch.Tensor:
    """Features (..., N, p) in float64 with a constant last column, whose coefficient is the intercept."""
    features = features.to(torch.float64)
    return torch.cat([features, torch.ones_like(features[..., :1])], -1)


def _per_class_product(per_class: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """per_class (..., F, C, k) @ shared (..., k, m) for every problem and class: (..., F, C, m).
    One matmul per solution; broadcasting over problems would copy `shared` for each."""
    return (per_class.flatten(-3, -2) @ shared).unflatten(-2, per_class.shape[-3:-1])


def _logits(features: torch.Tensor, coefficients: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Logits (..., F, C, n) of features (..., n, q) under coefficients (..., F, C, q): classes on
    the second-last axis, so softmax and sums over classes run along contiguous samples."""
    return torch.where(present.unsqueeze(-1), _per_class_product(coefficients, features.mT), -torch.inf)


def _symmetric_pairs(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first, second) of the size·(size + 1)/2 index pairs first ≤ second, in row-major order, and
    the (size, size) table of each (a, b)'s pair: a symmetric matrix needs only those pairs' entries."""
    first, second = torch.triu_indices(size, size, device=device)
    table = torch.empty(size, size, dtype=torch.long, device=device)
    table[first, second] = table[second, first] = torch.arange(len(first), device=device)
    return first, second, table


class _Problems:
    """The fixed parts of F logistic regressions on the same features (..., N, q) with labels (F, N)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, num_classes: Sequence[int]):
        self.features, self.num_samples = features, features.shape[-2]
        num_features, device = features.shape[-1], features.device
        counts = torch.tensor(num_classes, device=device)
        self.num_columns = _num_columns(num_classes)
        column = torch.arange(self.num_columns, device=device)
        self.present = column < counts.unsqueeze(-1)
        self.labels = labels.unsqueeze(-2)
        self.one_hot = torch.nn.functional.one_hot(labels, self.num_columns).mT.to(features)
        binary = (counts == 2).unsqueeze(-1)
        # scikit-learn's binary model has one decision function: class 0's logit stays 0.
        free_class = self.present & ~(binary & (column == 0))
        is_intercept = torch.arange(num_features, device=device) == num_features - 1
        self.shape = (*features.shape[:-2], len(num_classes), self.num_columns, num_features)
        self.free = free_class.repeat_interleave(num_features, -1)
        self.penalised = (free_class.unsqueeze(-1) & ~is_intercept).flatten(-2).to(features)
        # A multinomial objective is flat along adding one constant to every intercept; a Hessian
        # term along that direction (zero in the gradient, where lbfgs from zero stays too) makes
        # the Newton system definite without changing its step elsewhere.
        shift = ((free_class & ~binary).unsqueeze(-1) & is_intercept).flatten(-2).to(features)
        self.intercept_shift = shift / shift.sum(-1, keepdim=True).clamp_min(1).sqrt()
        self.class_pair_table = _symmetric_pairs(self.num_columns, device)[2]
        feature_first, feature_second, self.feature_pair_table = _symmetric_pairs(num_features, device)
        self.feature_products = features[..., feature_first] * features[..., feature_second]
        self.first_row = (column == 0).unsqueeze(-1).to(features)  # δ_kl on the rows l ≥ k

    def objective(self, logits: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy plus the weights' L2 penalty, (..., F)."""
        true_logits = logits.gather(-2, self.labels.expand(*logits.shape[:-2], 1, -1)).squeeze(-2)
        penalty = (coefficients.flatten(-2).square() * self.penalised).sum(-1) / (2 * INVERSE_REGULARISATION)
        return (logits.logsumexp(-2) - true_logits).mean(-1) + penalty / self.num_samples

    def gradient(self, probabilities: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """(..., F, C·q), zero on the entries that are not parameters."""
        data_term = _per_class_product(probabilities - self.one_hot, self.features).flatten(-2)
        penalty_term = coefficients.flatten(-2) * self.penalised / INVERSE_REGULARISATION
        return (data_term + penalty_term) * self.free / self.num_samples

    def hessian(self, probabilities: torch.Tensor) -> torch.Tensor:
        """(..., F, C·q, C·q): Σ_i (diag(p_i) - p_i p_iᵀ) ⊗ x_i x_iᵀ / N plus the penalty, the
        identity on entries that are not parameters. Both factors are symmetric, so sums over the
        samples of their upper triangles' products give every entry."""
        # Class k against classes l ≥ k, one k at a time: small temporaries, not all pairs at once.
        pair_sums = torch.cat([_per_class_product(probabilities[..., k:k + 1, :]
                                                  * (self.first_row[:self.num_columns - k] - probabilities[..., k:, :]),
                                                  self.feature_products)
                               for k in range(self.num_columns)], -2)
        hessian = pair_sums[..., self.class_pair_table[:, None, :, None], self.feature_pair_table[None, :, None, :]]
        hessian = hessian.flatten(-4, -3).flatten(-2) / self.num_samples
        both_free = self.free.unsqueeze(-1) & self.free.unsqueeze(-2)
        return (hessian * both_free
                + torch.diag_embed(self.penalised / (INVERSE_REGULARISATION * self.num_samples) + ~self.free)
                + self.intercept_shift.unsqueeze(-1) * self.intercept_shift.unsqueeze(-2))


def fit_logistic_regression(features: torch.Tensor, labels: torch.Tensor, num_classes: Sequence[int]
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit features (..., N, p) to each label set of labels (F, N), problem f's in [0, num_classes[f]).
    Returns (coefficients (..., F, C, p + 1), intercept last; which of the C = max(num_classes)
    classes each problem has (F, C))."""
    problems = _Problems(_with_intercept(features), labels, num_classes)
    coefficients = torch.zeros(problems.shape, dtype=torch.float64, device=features.device)
    logits = _logits(problems.features, coefficients, problems.present)
    objective = problems.objective(logits, coefficients)
    for _ in range(MAX_NEWTON_STEPS):
        probabilities = logits.softmax(-2)
        gradient = problems.gradient(probabilities, coefficients)
        if gradient.abs().amax() <= GRADIENT_TOLERANCE:
            break
        direction = -torch.linalg.solve(problems.hessian(probabilities), gradient)
        slope = (gradient * direction).sum(-1)
        direction = direction.unflatten(-1, problems.shape[-2:])
        # Classes a problem does not have get no direction, so their logits stay -inf.
        logit_direction = _per_class_product(direction, problems.features.mT)
        # Backtracking (Armijo) per problem, all problems evaluated together.
        step = torch.ones_like(objective)
        for _ in range(MAX_STEP_HALVINGS):
            candidate = coefficients + step[..., None, None] * direction
            candidate_logits = logits + step[..., None, None] * logit_direction
            candidate_objective = problems.objective(candidate_logits, candidate)
            accepted = (candidate_objective <= objective + SUFFICIENT_DECREASE * step * slope
                        + OBJECTIVE_ROUNDING * objective.abs())
            if accepted.all():
                break
            step = torch.where(accepted, step, step / 2)
        coefficients, logits, objective = candidate, candidate_logits, candidate_objective
    return coefficients, problems.present


def _reference_logits(features, labels, num_classes, evaluated, seed):
    from sklearn.linear_model import LogisticRegression  # loaded only where the reference runs

    device = features.device
    features, evaluated = features.cpu().numpy(), [other.cpu().numpy() for other in evaluated]
    num_columns = _num_columns(num_classes)
    per_problem = []
    for problem_labels in labels.cpu().numpy():
        model = LogisticRegression(random_state=estimator_seed(seed)).fit(features, problem_labels)
        per_problem.append([model.decision_function(other) for other in evaluated])
    return tuple(torch.stack([_padded_logits(torch.from_numpy(decision).reshape(len(decision), -1), num_columns)
                              for decision in decisions]).to(device)
                 for decisions in zip(*per_problem))


def logistic_regression_logits(features: torch.Tensor, labels: torch.Tensor, num_classes: Sequence[int],
                               evaluated: list[torch.Tensor], *, mode: str, seed: int) -> tuple[torch.Tensor, ...]:
    """Fit on features (..., N, p) one classifier per label set of labels (F, N), set f's in
    [0, num_classes[f]); return the logits (..., F, n, max(num_classes)) of each tensor in
    `evaluated` (..., n, p), -inf for classes a problem does not have."""
    if mode == "fast":
        coefficients, present = fit_logistic_regression(features, labels, num_classes)
        return tuple(_logits(_with_intercept(other), coefficients, present).mT for other in evaluated)
    return per_solution(lambda solution_features, *solution_evaluated:
                        _reference_logits(solution_features, labels, num_classes, solution_evaluated, seed),
                        (features, *evaluated))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of argmax predictions equal to labels (..., n); a label of -1 is never predicted."""
    return (logits.argmax(-1) == labels).to(torch.float64).mean(-1)
