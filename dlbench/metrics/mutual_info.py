"""Empirical discrete mutual information for all (code, factor) pairs at once, in nats.

Joint counts of every pair come from one matrix product of one-hot label matrices (exact in
float64), so the cost is one pass over the samples instead of one per pair.
"""
from __future__ import annotations

import torch

from dlbench.metrics.discretize import DEFAULT_NUM_BINS, class_labels, histogram_bins


def _one_hot_columns(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(..., N, c) labels in [0, num_classes) -> (..., N, c * num_classes) float64 indicators."""
    num_columns = labels.shape[-1]
    offsets = torch.arange(num_columns, device=labels.device) * num_classes
    indicators = torch.zeros(*labels.shape[:-1], num_columns * num_classes,
                             dtype=torch.float64, device=labels.device)
    return indicators.scatter_(-1, labels + offsets, 1.0)


def mutual_info_from_labels(labels_a: torch.Tensor, classes_a: int,
                            labels_b: torch.Tensor, classes_b: int) -> torch.Tensor:
    """MI of every column of labels_a (..., N, ca) with every column of labels_b (..., N, cb):
    (..., ca, cb), as scikit-learn's `mutual_info_score` computes it for one pair."""
    counts = _one_hot_columns(labels_a, classes_a).transpose(-1, -2) @ _one_hot_columns(labels_b, classes_b)
    counts = counts.unflatten(-1, (labels_b.shape[-1], classes_b))
    counts = counts.unflatten(-3, (labels_a.shape[-1], classes_a)).transpose(-3, -2)  # (..., ca, cb, A, B)
    total = counts.sum((-1, -2), keepdim=True)
    row, column = counts.sum(-1, keepdim=True), counts.sum(-2, keepdim=True)
    # Grouped so that a code or factor with a single value gives terms of exactly 0 (fl(a - b) =
    # -fl(b - a)); terms below machine epsilon are zeroed as scikit-learn does.
    terms = counts * ((counts.log() - row.log()) + (total.log() - column.log())) / total
    terms = torch.where((counts > 0) & (terms.abs() >= torch.finfo(torch.float64).eps), terms, 0.0)
    return terms.sum((-1, -2)).clamp_min(0.0)


def entropy_from_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Empirical entropy in nats of every column of labels (..., N, c): (..., c)."""
    counts = _one_hot_columns(labels, num_classes).sum(-2).unflatten(-1, (labels.shape[-1], num_classes))
    probabilities = counts / labels.shape[-2]
    return -torch.special.xlogy(probabilities, probabilities).sum(-1)


def code_factor_mutual_info(codes: torch.Tensor, factors: torch.Tensor,
                            num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """m_ij = MI(histogram-discretised code i; factor j): (..., d, K) for codes (..., N, d)
    and factors (N, K); continuous factors are discretised with the same rule."""
    factor_labels, factor_classes = class_labels(factors, num_bins)
    return mutual_info_from_labels(histogram_bins(codes, num_bins), num_bins,
                                   factor_labels.to(codes.device), factor_classes)


def factor_entropy(factors: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """H_j of every factor column (N, K), in nats: (K,)."""
    return entropy_from_labels(*class_labels(factors, num_bins))
