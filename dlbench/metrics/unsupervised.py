"""Unsupervised scores of the codes alone, as disentanglement_lib's `unsupervised_metrics` plus
active units and KL per latent.

- Gaussian total correlation ½(Σ log diag C - log det C) of the code covariance C (ddof 1); a
  constant code is independent of the others and contributes nothing, so it is left out.
- Mean pairwise MI: mean over ordered pairs i != j of the 20-bin discrete MI between codes.
- Active units: codes whose variance of μ over the data exceeds 0.01.
- KL per latent: ½ mean_n (μ² + σ² - log σ² - 1) per dimension, for models that expose their
  posterior through `posterior_parameters(observations) -> (mean, log_variance)`.
"""
from __future__ import annotations

from typing import Any

import torch

from dlbench.interfaces import Model, PosteriorModel
from dlbench.metrics.base import finite_codes
from dlbench.metrics.discretize import DEFAULT_NUM_BINS, histogram_bins
from dlbench.metrics.mutual_info import mutual_info_from_labels
from dlbench.metrics.sampling import BinnedMetric, Encoder, Split

ACTIVE_VARIANCE = 0.01


def gaussian_total_correlation(codes: torch.Tensor) -> torch.Tensor:
    """Total correlation (...) of a Gaussian with the covariance of codes (..., N, d), in nats."""
    codes = finite_codes(codes)
    centred = codes - codes.mean(-2, keepdim=True)
    covariance = centred.transpose(-1, -2) @ centred / (codes.shape[-2] - 1)
    variance = covariance.diagonal(dim1=-2, dim2=-1)
    constant = variance == 0
    # Replace a constant code's row and column by those of an independent unit-variance code.
    independent = (constant.unsqueeze(-1) | constant.unsqueeze(-2))
    identity = torch.eye(codes.shape[-1], dtype=torch.float64, device=codes.device)
    covariance = torch.where(independent, identity, covariance)
    return 0.5 * (covariance.diagonal(dim1=-2, dim2=-1).log().sum(-1) - torch.linalg.slogdet(covariance).logabsdet)


def mean_pairwise_mutual_info(codes: torch.Tensor, num_bins: int = DEFAULT_NUM_BINS) -> torch.Tensor:
    """Mean discrete MI (...) between distinct codes of codes (..., N, d), d >= 2."""
    codes = finite_codes(codes, minimum_codes=2)
    bins = histogram_bins(codes, num_bins)
    mutual_info = mutual_info_from_labels(bins, num_bins, bins, num_bins)
    num_codes = codes.shape[-1]
    off_diagonal = mutual_info.sum((-1, -2)) - mutual_info.diagonal(dim1=-2, dim2=-1).sum(-1)
    return off_diagonal / (num_codes * (num_codes - 1))


def active_units(codes: torch.Tensor, threshold: float = ACTIVE_VARIANCE) -> torch.Tensor:
    """Number (...) of codes (..., N, d) whose variance (ddof 1) exceeds threshold."""
    return (finite_codes(codes).var(-2) > threshold).sum(-1)


def kl_per_latent(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(q(z_i|x) || N(0, 1)) averaged over samples, per latent: (..., N, d) -> (..., d)."""
    mean, log_variance = finite_codes(mean), finite_codes(log_variance)
    return 0.5 * (mean.square() + log_variance.exp() - log_variance - 1).mean(-2)


class Unsupervised(BinnedMetric):
    """Scores of the codes alone: Gaussian total correlation, mean pairwise MI, active units, KL."""

    name = "unsupervised"
    has_posterior = False  # set by encoder() for the model being scored

    def encoder(self, model: Model) -> Encoder:
        self.has_posterior = isinstance(model, PosteriorModel)
        if not self.has_posterior:
            return model.representation
        # Mean and log-variance travel together as one (..., num, 2d) code tensor.
        return lambda observations: torch.cat(model.posterior_parameters(observations), -1)

    def score(self, train: Split, test: Split | None, seed: int):
        codes = train.codes
        scores: dict[str, torch.Tensor] = {}
        if self.has_posterior:
            codes, log_variance = train.codes.chunk(2, -1)
            scores["kl_per_latent"] = kl_per_latent(codes, log_variance)
        scores |= {"gaussian_total_correlation": gaussian_total_correlation(codes),
                   "mutual_info_score": mean_pairwise_mutual_info(codes, self.num_bins),
                   "active_units": active_units(codes)}
        details: dict[str, Any] = {"num_bins": self.num_bins, "active_variance_threshold": ACTIVE_VARIANCE,
                                   "kl_per_latent": "computed from model.posterior_parameters" if self.has_posterior
                                   else "not available: the model has no posterior_parameters()"}
        return scores, details
