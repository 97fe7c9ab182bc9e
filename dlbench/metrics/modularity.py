"""Modularity and explicitness (Ridgeway & Zemel 2018), as disentanglement_lib's
`_compute_modularity_explicitness`.

Modularity: from the 20-bin MI matrix, per code δ_i = (Σ_j m_ij² - max_j m_ij²) / (max_j m_ij² (K - 1)),
score 1 - δ_i (0 when the code carries no information), mean over codes.
Explicitness: per factor, a logistic regression on the standardised codes (train split); the
macro-averaged one-vs-rest ROC-AUC of its class probabilities, on the train and the test split;
mean over factors. The AUC is computed in torch (rank statistic, ties averaged, as scikit-learn's
`roc_auc_score`) over the classes present in the split with both outcomes; the classifier is
scikit-learn's (`reference`) or the torch solver of the same objective (`fast`).
"""
from __future__ import annotations

import torch

from dlbench.metrics.base import (
    MODES,
    check_choice,
    check_count,
    finite_codes,
    require_discrete_factors,
    varying_factor_mask,
)
from dlbench.metrics.classifiers import logistic_regression_logits
from dlbench.metrics.discretize import DEFAULT_NUM_BINS, labels_against
from dlbench.metrics.mutual_info import code_factor_mutual_info
from dlbench.metrics.sampling import SampledMetric, Split, factor_details


def modularity(codes: torch.Tensor, factors: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """Modularity (...) of codes (..., N, d) for factors (N, K); constant factors skipped."""
    factors = factors[:, varying_factor_mask(factors)]
    squared = code_factor_mutual_info(finite_codes(codes), factors, num_bins).square()
    largest = squared.amax(-1)
    # With a single factor every informative code is perfectly modular: δ = 0 / (max · 0) is taken as 0.
    deviation = (squared.sum(-1) - largest) / (largest * max(factors.shape[1] - 1, 1))
    return torch.where(largest > 0, 1 - deviation, 0.0).mean(-1)


def mean_roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Macro one-vs-rest ROC-AUC of scores (..., n, C) for labels (n,) in [0, C) (-1: none; or
    labels (..., n), one set per leading index), over the classes that have both positives and
    negatives: (...)."""
    num = scores.shape[-2]
    order = scores.argsort(-2)
    ordered = scores.gather(-2, order)
    # Tied scores share the mean of their ranks: group runs of equal values per column.
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[..., 1:, :] = ordered[..., 1:, :] != ordered[..., :-1, :]
    group = starts.cumsum(-2) - 1
    positions = torch.arange(1, num + 1, dtype=torch.float64, device=scores.device).unsqueeze(-1).expand_as(ordered)
    rank_sums = torch.zeros_like(ordered).scatter_add_(-2, group, positions)
    group_sizes = torch.zeros_like(ordered).scatter_add_(-2, group, torch.ones_like(ordered))
    ranks = torch.zeros_like(ordered).scatter_(-2, order, (rank_sums / group_sizes).gather(-2, group))
    positives = (labels.unsqueeze(-1) == torch.arange(scores.shape[-1], device=labels.device)).to(ranks)
    num_positive = positives.sum(-2)
    num_negative = num - num_positive
    auc = ((ranks * positives).sum(-2) - num_positive * (num_positive + 1) / 2) / (num_positive * num_negative)
    defined = (num_positive > 0) & (num_negative > 0)
    return torch.where(defined, auc, 0.0).sum(-1) / defined.sum(-1)


def explicitness(codes: torch.Tensor, factors: torch.Tensor, test_codes: torch.Tensor, test_factors: torch.Tensor,
                 *, mode: str = "reference", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) explicitness (...) of codes (..., N, d) for discrete factors (N, K)."""
    codes, test_codes = finite_codes(codes), finite_codes(test_codes)
    mean, deviation = codes.mean(-2, keepdim=True), codes.std(-2, unbiased=False, keepdim=True)
    # A constant code standardises to zeros instead of 0 / 0.
    deviation = torch.where(deviation > 0, deviation, 1.0)
    codes, test_codes = (codes - mean) / deviation, (test_codes - mean) / deviation
    varies = varying_factor_mask(factors)
    classes, labels, test_labels = zip(*(labels_against(factor.to(codes.device), test_factor.to(codes.device))
                                         for factor, test_factor in zip(factors[:, varies].T,
                                                                        test_factors[:, varies].T)))
    labels, test_labels = torch.stack(labels), torch.stack(test_labels)
    # One fit for all factors: the classifiers share the codes, so `fast` solves them together.
    train_logits, test_logits = logistic_regression_logits(codes, labels, [len(values) for values in classes],
                                                           [codes, test_codes], mode=mode, seed=seed)
    return (mean_roc_auc(train_logits.softmax(-1), labels).mean(-1),
            mean_roc_auc(test_logits.softmax(-1), test_labels).mean(-1))


class ModularityExplicitness(SampledMetric):
    """Modularity (one factor per code, from MI) and explicitness (ROC-AUC of a linear probe)."""

    name = "modularity_explicitness"

    def __init__(self, protocol: str = "paper", num_train: int = 10000, num_test: int = 5000,
                 num_bins: int = DEFAULT_NUM_BINS, mode: str = "reference", random_seed: int | None = None):
        super().__init__(protocol=protocol, num_train=num_train,
                         num_test=check_count("modularity_explicitness.num_test", num_test), random_seed=random_seed)
        self.num_bins = check_count("modularity_explicitness.num_bins", num_bins, minimum=2)
        self.mode = check_choice("modularity_explicitness.mode", mode, MODES)

    def score(self, train: Split, test: Split | None, seed: int):
        require_discrete_factors(train.factors, self.name)
        explicit_train, explicit_test = explicitness(train.codes, train.factors, test.codes, test.factors,
                                                     mode=self.mode, seed=seed)
        return ({"modularity": modularity(train.codes, train.factors, self.num_bins),
                 "explicitness_train": explicit_train, "explicitness_test": explicit_test},
                {"num_bins": self.num_bins, "mode": self.mode, **factor_details(train.factors, self.num_bins)})
