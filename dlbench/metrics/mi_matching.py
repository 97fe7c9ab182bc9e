"""I_m: the maximum-weight one-to-one matching of codes to factors of the summed discrete MI.

The same 20-bin MI matrix as MIG; the matching is scipy's Hungarian `linear_sum_assignment` on the
rectangular d x K matrix (min(d, K) pairs). In nats, not normalised.
"""
from __future__ import annotations

import torch

from dlbench.metrics.base import finite_codes, varying_factors
from dlbench.metrics.discretize import DEFAULT_NUM_BINS
from dlbench.metrics.mutual_info import code_factor_mutual_info
from dlbench.metrics.sampling import BinnedMetric, Split, factor_details


def matched_information(mutual_info: torch.Tensor) -> torch.Tensor:
    """Total weight of the maximum-weight one-to-one matching of rows to columns of each matrix
    (..., d, K), by scipy's Hungarian algorithm: one small assignment problem per matrix, all
    moved to the host in one transfer."""
    from scipy.optimize import linear_sum_assignment  # scipy loads on first use, not with dlbench

    matrices = mutual_info.detach().reshape(-1, *mutual_info.shape[-2:]).cpu().numpy()
    totals = torch.empty(len(matrices), dtype=torch.float64)
    for index, matrix in enumerate(matrices):
        rows, columns = linear_sum_assignment(matrix, maximize=True)
        totals[index] = float(matrix[rows, columns].sum())
    return totals.reshape(mutual_info.shape[:-2]).to(mutual_info.device)


def mi_matching(codes: torch.Tensor, factors: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """I_m (...) for codes (..., N, d) and factors (N, K)."""
    mutual_info = code_factor_mutual_info(finite_codes(codes), varying_factors(factors), num_bins)
    return matched_information(mutual_info)


class MIMatching(BinnedMetric):
    """I_m: total MI of the best one-to-one matching of codes to factors (nats)."""

    name = "i_m"


    def score(self, train: Split, test: Split | None, seed: int):
        return ({"i_m": mi_matching(train.codes, train.factors, self.num_bins)},
                {"num_bins": self.num_bins, **factor_details(train.factors, self.num_bins)})
