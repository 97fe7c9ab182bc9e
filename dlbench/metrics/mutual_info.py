"""Empirical discrete mutual information for all (code, factor) pairs at once, in nats.

Joint counts of every pair come from one bincount over (pair, cell) indices, so the cost is one
vectorised pass over the samples instead of one Python-level call per pair.
"""
from __future__ import annotations

import math

import torch

from dlbench.metrics.discretize import DEFAULT_NUM_BINS, class_labels, histogram_bins


def joint_counts(labels_a: torch.Tensor, classes_a: int, labels_b: torch.Tensor, classes_b: int) -> torch.Tensor:
    """Contingency tables (..., ca, cb, classes_a, classes_b) of every column of labels_a
    (..., N, ca) against every column of labels_b (..., N, cb), from one bincount."""
    # Contiguous inputs give a contiguous cell tensor, which bincount reads without a copy.
    pair_cell = labels_a.contiguous().unsqueeze(-1) * classes_b + labels_b.contiguous().unsqueeze(-2)
    leading, (num_a, num_b) = pair_cell.shape[:-3], pair_cell.shape[-2:]
    tables = pair_cell.new_tensor(range(math.prod(leading) * num_a * num_b)).view(*leading, 1, num_a, num_b)
    cells = (tables * (classes_a * classes_b) + pair_cell).flatten()
    counts = torch.bincount(cells, minlength=tables.numel() * classes_a * classes_b)
    return counts.view(*leading, num_a, num_b, classes_a, classes_b).to(torch.float64)


def mutual_info_from_labels(labels_a: torch.Tensor, classes_a: int,
                            labels_b: torch.Tensor, classes_b: int) -> torch.Tensor:
    """MI of every column of labels_a (..., N, ca) with every column of labels_b (..., N, cb):
    (..., ca, cb), as scikit-learn's `mutual_info_score` computes it for one pair."""
    counts = joint_counts(labels_a, classes_a, labels_b, classes_b)
    total = counts.sum((-1, -2), keepdim=True)
    row, column = counts.sum(-1, keepdim=True), counts.sum(-2, keepdim=True)
    # Grouped so that a code or factor with a single value gives terms of exactly 0 (fl(a - b) =
    # -fl(b - a)); terms below machine epsilon are zeroed as scikit-learn does.
    terms = counts * ((counts.log() - row.log()) + (total.log() - column.log())) / total
    terms = torch.where((counts > 0) & (terms.abs() >= torch.finfo(torch.float64).eps), terms, 0.0)
    return terms.sum((-1, -2)).clamp_min(0.0)


def code_factor_mutual_info(codes: torch.Tensor, factors: torch.Tensor,
                            num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """m_ij = MI(histogram-discretised code i; factor j): (..., d, K) for codes (..., N, d)
    and factors (N, K); continuous factors are discretised with the same rule."""
    factor_labels, factor_classes = class_labels(factors, num_bins)
    return mutual_info_from_labels(histogram_bins(codes, num_bins), num_bins,
                                   factor_labels.to(codes.device), factor_classes)


def factor_information(factors: torch.Tensor, codes: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(m (..., d, K) as code_factor_mutual_info, H_j (K,) the entropy of each factor in nats);
    H_j = MI(y_j; y_j), as disentanglement_lib computes it."""
    factor_labels, factor_classes = class_labels(factors, num_bins)
    factor_labels = factor_labels.to(codes.device)
    entropy = mutual_info_from_labels(factor_labels, factor_classes, factor_labels, factor_classes)
    return (mutual_info_from_labels(histogram_bins(codes, num_bins), num_bins, factor_labels, factor_classes),
            entropy.diagonal(dim1=-2, dim2=-1))
