"""Histogram discretisation of codes and class labelling of factors, in torch on the data's device.

The bin edges replicate numpy exactly (`np.histogram(x, num_bins)` edges in float64, then
`np.digitize(x, edges[:-1])`), so scores agree with disentanglement_lib's numpy code to rounding.
"""
from __future__ import annotations

import torch

DEFAULT_NUM_BINS = 20


def histogram_bins(values: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """Bin index in [0, num_bins) of every entry of `values` (..., N, d), each column separately,
    with num_bins equal-width bins spanning that column's own observed min..max."""
    values = values.to(torch.float64)
    low, high = values.amin(-2), values.amax(-2)
    # np.histogram widens a degenerate range to [x - 0.5, x + 0.5].
    degenerate = low == high
    low, high = torch.where(degenerate, low - 0.5, low), torch.where(degenerate, high + 0.5, high)
    # np.linspace: start + arange * ((stop - start) / num), with the last edge set to stop; only
    # the first num_bins edges are used (np.digitize on edges[:-1]), so the last one never matters.
    steps = torch.arange(num_bins, dtype=torch.float64, device=values.device)
    edges = steps * ((high - low) / num_bins).unsqueeze(-1) + low.unsqueeze(-1)  # (..., d, num_bins)
    # np.digitize(x, increasing edges) == searchsorted(edges, x, side="right"), in 1..num_bins.
    bins = torch.searchsorted(edges.contiguous(), values.transpose(-1, -2).contiguous(), right=True)
    return (bins - 1).transpose(-1, -2)


def class_labels(factors: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> tuple[torch.Tensor, int]:
    """(labels, num_classes): each factor column (N, K) relabelled 0..(distinct values - 1).

    Float (continuous) factors are first discretised like codes, into num_bins histogram bins.
    Mutual information and entropies do not depend on the labels' names, only on the grouping.
    """
    if factors.is_floating_point():
        factors = histogram_bins(factors, num_bins)
    columns = [torch.unique(column, return_inverse=True)[1] for column in factors.unbind(-1)]
    labels = torch.stack(columns, -1)
    return labels, int(labels.max()) + 1


def labels_against(train_column: torch.Tensor, other_column: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class labels of one factor for a classifier: (classes, train labels, other labels).

    Labels index the sorted distinct training values; a value of `other_column` that the training
    split never shows gets -1, which no prediction equals (as with a fitted scikit-learn model)."""
    classes, train_labels = torch.unique(train_column, return_inverse=True)
    position = torch.searchsorted(classes, other_column.contiguous()).clamp_max(len(classes) - 1)
    other_labels = torch.where(classes[position] == other_column, position, -1)
    return classes, train_labels, other_labels

