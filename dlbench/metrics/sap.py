"""Separated Attribute Predictability (Kumar et al. 2018), as disentanglement_lib's `_compute_sap`.

S_ij scores how well code i alone predicts factor j; SAP = mean_j (largest_i S_ij - second
largest_i S_ij).
- Discrete factors: S_ij = test accuracy of a linear SVM on the 1-D code i.
  `reference` fits scikit-learn's `LinearSVC(C=0.01, class_weight="balanced")` per pair (liblinear's
  primal solver, stopping at its default tolerance 1e-4). `fast` solves the same optimisation
  problem for all (code, class) pairs of a factor at once in torch, to convergence: the squared-hinge
  primal with an L2-regularised bias (liblinear's intercept_scaling = 1), one-vs-rest for > 2
  classes with liblinear's weights (positives C * balanced weight, negatives plain C; in the binary
  case each class C * its own weight). Scores differ only where liblinear's early stop moves a
  threshold across a sample (see tests/metrics/test_sap.py for the measured gap).
- Continuous factors: S_ij = cov(code_i, y_j)^2 / (var code_i * var y_j), 0 when var code_i <= 1e-12.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dlbench.errors import ConfigError
from dlbench.metrics.base import (
    MODES,
    check_choice,
    check_count,
    finite_codes,
    per_solution,
    top_two_gap,
    varying_factor_mask,
)
from dlbench.metrics.discretize import labels_against
from dlbench.metrics.sampling import SampledMetric, Split, factor_details

SVM_C = 0.01
# Newton steps on a 2-parameter piecewise-quadratic problem: converges in a few dozen steps.
MAX_NEWTON_STEPS = 100
GRADIENT_TOLERANCE = 1e-10


def continuous_score_matrix(codes: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """S_ij = squared correlation of code i (..., N, d) with factor j (N, K): (..., d, K)."""
    centred_codes = codes - codes.mean(-2, keepdim=True)
    factors = factors.to(codes)
    centred_factors = factors - factors.mean(0)
    num = codes.shape[-2]
    covariance = centred_codes.transpose(-1, -2) @ centred_factors / (num - 1)
    code_variance = centred_codes.square().sum(-2) / (num - 1)
    factor_variance = centred_factors.square().sum(0) / (num - 1)
    scores = covariance.square() / (code_variance.unsqueeze(-1) * factor_variance)
    return torch.where(code_variance.unsqueeze(-1) > 1e-12, scores, 0.0)


def reference_score_matrix(codes, test_codes, factors, test_factors) -> tuple[torch.Tensor]:
    from sklearn.svm import LinearSVC  # loaded only where the reference estimator runs

    codes, factors, test_codes, test_factors = (t.cpu().numpy() for t in (codes, factors, test_codes, test_factors))
    scores = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            classifier = LinearSVC(C=SVM_C, class_weight="balanced").fit(codes[:, i:i + 1], factors[:, j])
            scores[i, j] = np.mean(classifier.predict(test_codes[:, i:i + 1]) == test_factors[:, j])
    return (torch.from_numpy(scores),)


def _svm_objective(weight, bias, codes, signs, costs):
    """Squared-hinge primal ½(w² + b²) + Σ c_n max(0, 1 - y_n (w x_n + b))² and its slack terms."""
    slack = (1 - signs * (weight.unsqueeze(-1) * codes + bias.unsqueeze(-1))).clamp_min(0)
    return 0.5 * (weight.square() + bias.square()) + (costs * slack.square()).sum(-1), slack


def fit_linear_svms(codes: torch.Tensor, signs: torch.Tensor, costs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of many 1-D linear SVMs at once by damped Newton steps on the primal.

    codes (..., 1, N) broadcast against signs (±1) and costs (per-sample C) of shape (..., P, N)."""
    weight = torch.zeros(signs.shape[:-1], dtype=torch.float64, device=signs.device)
    bias = torch.zeros_like(weight)
    objective, slack = _svm_objective(weight, bias, codes, signs, costs)
    for _ in range(MAX_NEWTON_STEPS):
        active_cost = costs * (slack > 0)
        pull = 2 * active_cost * signs * slack
        gradient_w = weight - (pull * codes).sum(-1)
        gradient_b = bias - pull.sum(-1)
        converged = torch.maximum(gradient_w.abs(), gradient_b.abs()) < GRADIENT_TOLERANCE
        if converged.all():
            break
        # Generalised Hessian of the squared hinge: I + 2 Σ_active c_n [x_n, 1]ᵀ[x_n, 1].
        h_ww = 1 + 2 * (active_cost * codes.square()).sum(-1)
        h_wb = 2 * (active_cost * codes).sum(-1)
        h_bb = 1 + 2 * active_cost.sum(-1)
        determinant = h_ww * h_bb - h_wb.square()
        step_w = torch.where(converged, 0.0, (h_bb * gradient_w - h_wb * gradient_b) / determinant)
        step_b = torch.where(converged, 0.0, (h_ww * gradient_b - h_wb * gradient_w) / determinant)
        descent = gradient_w * step_w + gradient_b * step_b
        step_size = torch.ones_like(weight)
        # Backtracking (Armijo) where a full step does not decrease the objective enough; the
        # rounding allowance keeps problems at their optimum from halving forever.
        allowance = 1e-12 * objective.abs()
        for _ in range(30):
            candidate, candidate_slack = _svm_objective(weight - step_size * step_w, bias - step_size * step_b,
                                                        codes, signs, costs)
            accepted = candidate <= objective - 1e-4 * step_size * descent + allowance
            if accepted.all():
                break
            step_size = torch.where(accepted, step_size, step_size / 2)
        weight, bias = weight - step_size * step_w, bias - step_size * step_b
        objective, slack = candidate, candidate_slack
    return weight, bias


def _fast_factor_scores(codes: torch.Tensor, factor: torch.Tensor, test_codes: torch.Tensor,
                        test_factor: torch.Tensor) -> torch.Tensor:
    """Test accuracy of every code's SVM for one factor: codes (..., N, d) -> (..., d)."""
    classes, labels, test_labels = labels_against(factor, test_factor)
    num_classes, num = len(classes), len(labels)
    class_counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    balanced_weight = num / (num_classes * class_counts)
    if num_classes == 2:
        # One problem: class 1 positive, each class weighted by its own balanced weight.
        targets = labels.unsqueeze(0) == 1
        costs = SVM_C * balanced_weight[labels].unsqueeze(0)
    else:
        targets = labels == torch.arange(num_classes, device=labels.device).unsqueeze(-1)  # (P, N)
        costs = SVM_C * torch.where(targets, balanced_weight.unsqueeze(-1), 1.0)
    signs = targets.to(torch.float64) * 2 - 1
    weight, bias = fit_linear_svms(codes.transpose(-1, -2).unsqueeze(-2), signs, costs)  # (..., d, P)
    decision = weight.unsqueeze(-1) * test_codes.transpose(-1, -2).unsqueeze(-2) + bias.unsqueeze(-1)
    predictions = (decision[..., 0, :] > 0).long() if num_classes == 2 else decision.argmax(-2)
    return (predictions == test_labels).to(torch.float64).mean(-1)


def fast_score_matrix(codes, factors, test_codes, test_factors) -> torch.Tensor:
    return torch.stack([_fast_factor_scores(codes, factor, test_codes, test_factor)
                        for factor, test_factor in zip(factors.unbind(-1), test_factors.unbind(-1))], -1)


def sap_score_matrix(codes: torch.Tensor, factors: torch.Tensor, test_codes: torch.Tensor | None = None,
                     test_factors: torch.Tensor | None = None, *, continuous_factors: bool = False,
                     mode: str = "reference") -> torch.Tensor:
    """S (..., d, K) for codes (..., N, d), factors (N, K) (and the test split for discrete factors)."""
    if continuous_factors:
        return continuous_score_matrix(codes, factors)
    if mode == "fast":
        return fast_score_matrix(codes, factors.to(codes.device), test_codes, test_factors.to(codes.device))
    return per_solution(reference_score_matrix, (codes, test_codes), factors, test_factors)[0]


def sap(codes: torch.Tensor, factors: torch.Tensor, test_codes: torch.Tensor | None = None,
        test_factors: torch.Tensor | None = None, *, continuous_factors: bool = False,
        mode: str = "reference") -> torch.Tensor:
    """SAP score (...) of codes (..., N, d); factors that never vary in the train split are skipped."""
    check_choice("sap_score.mode", mode, MODES)
    codes = finite_codes(codes, minimum_codes=2)
    varies = varying_factor_mask(factors)
    factors = factors[:, varies]
    if not continuous_factors:
        test_codes, test_factors = finite_codes(test_codes, minimum_codes=2), test_factors[:, varies]
    matrix = sap_score_matrix(codes, factors, test_codes, test_factors,
                              continuous_factors=continuous_factors, mode=mode)
    return top_two_gap(matrix).mean(-1)


class SAPScore(SampledMetric):
    """SAP: gap between the two codes that best predict each factor on their own (linear SVM or R²).

    Args:
        continuous_factors: score with squared correlations (continuous factors) instead of SVMs; None: from the
            dataset's factors.
    """

    name = "sap_score"

    def __init__(self, protocol: str = "paper", num_train: int = 10000, num_test: int = 5000,
                 mode: str = "reference", continuous_factors: bool | None = None, random_seed: int | None = None):
        super().__init__(protocol=protocol, num_train=num_train, num_test=check_count("sap_score.num_test", num_test),
                         random_seed=random_seed)
        self.mode = check_choice("sap_score.mode", mode, MODES)
        self.continuous_factors = check_choice("sap_score.continuous_factors", continuous_factors, (None, True, False))

    def score(self, train: Split, test: Split | None, seed: int):
        continuous = train.factors.is_floating_point() if self.continuous_factors is None else self.continuous_factors
        if not continuous and train.factors.is_floating_point():
            raise ConfigError("sap_score.continuous_factors = False needs discrete factors, and the dataset's "
                              "factors are continuous; leave it unset (auto) or set it to True")
        details: dict[str, Any] = {"continuous_factors": continuous, **factor_details(train.factors)}
        if not continuous:
            details["mode"] = self.mode
        return ({"sap": sap(train.codes, train.factors, test.codes, test.factors,
                            continuous_factors=continuous, mode=self.mode)}, details)
