"""I_m: the maximum-weight one-to-one matching of codes to factors of the summed discrete MI.

The same 20-bin MI matrix as MIG; the matching is scipy's Hungarian `linear_sum_assignment` on the
rectangular d x K matrix (min(d, K) pairs). In nats, not normalised.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

from dlbench.metrics.base import finite_codes, per_solution, varying_factors
from dlbench.metrics.discretize import DEFAULT_NUM_BINS
from dlbench.metrics.mutual_info import code_factor_mutual_info
from dlbench.metrics.sampling import BinnedMetric, Split, factor_details


def _matched_information(mutual_info: torch.Tensor) -> tuple[torch.Tensor]:
    rows, columns = linear_sum_assignment(mutual_info.cpu().numpy(), maximize=True)
    return (mutual_info[rows, columns].sum(),)


def mi_matching(codes: torch.Tensor, factors: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """I_m (...) for codes (..., N, d) and factors (N, K)."""
    mutual_info = code_factor_mutual_info(finite_codes(codes), varying_factors(factors), num_bins)
    # The matrices are d x K: a loop over solutions, never over samples.
    return per_solution(_matched_information, (mutual_info,))[0]


class MIMatching(BinnedMetric):
    """I_m: total MI of the best one-to-one matching of codes to factors (nats)."""

    name = "i_m"


    def score(self, train: Split, test: Split | None, seed: int):
        return ({"i_m": mi_matching(train.codes, train.factors, self.num_bins)},
                {"num_bins": self.num_bins, **factor_details(train.factors, self.num_bins)})
