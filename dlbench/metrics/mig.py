"""Mutual Information Gap (Chen et al. 2018), as disentanglement_lib's `_compute_mig`."""
from __future__ import annotations

import torch

from dlbench.metrics.base import finite_codes, top_two_gap, varying_factors
from dlbench.metrics.discretize import DEFAULT_NUM_BINS
from dlbench.metrics.mutual_info import factor_information
from dlbench.metrics.sampling import BinnedMetric, Split, factor_details


def mig(codes: torch.Tensor, factors: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """MIG = mean_j (largest_i m_ij - second largest_i m_ij) / H_j for codes (..., N, d) and
    factors (N, K); m_ij the MI of histogram-discretised code i with factor j. Factors that never
    vary (H_j = 0) are skipped."""
    codes = finite_codes(codes, minimum_codes=2)
    factors = varying_factors(factors)
    mutual_info, entropy = factor_information(factors, codes, num_bins)
    return (top_two_gap(mutual_info) / entropy).mean(-1)


class MIG(BinnedMetric):
    """Mutual Information Gap: normalised gap between the two codes most informative of each factor."""

    name = "mig"


    def score(self, train: Split, test: Split | None, seed: int):
        return ({"mig": mig(train.codes, train.factors, self.num_bins)},
                {"num_bins": self.num_bins, **factor_details(train.factors, self.num_bins)})
