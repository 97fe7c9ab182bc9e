"""β-TCVAE (Chen et al. 2018): the KL plus (β − 1) times the total correlation of q(z), by minibatch-weighted
sampling."""
from __future__ import annotations

import torch

from dlbench_deep_vae.factory import model_factory
from dlbench_deep_vae.objective import Axis, Objective, gaussian_log_density


def total_correlation(codes: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """mean_j [log q(z_j) − Σ_l log q(z_j,l)] over the batch, each q estimated from the batch's posteriors with the
    constant (d − 1)·log(B·N) dropped (so it may be negative): (S,) from (S, B, d)."""
    # log q(z_j,l | x_i) for every pair: [s, j, i, l]
    pairs = gaussian_log_density(codes.unsqueeze(-2), mean.unsqueeze(-3), log_var.unsqueeze(-3))
    joint = torch.logsumexp(pairs.sum(dim=-1), dim=-1)
    product_of_marginals = torch.logsumexp(pairs, dim=-2).sum(dim=-1)
    return (joint - product_of_marginals).mean(dim=-1)


class BetaTCVAE(Objective):
    model = "beta_tc_vae"
    axes = {"beta": Axis("betas", (1, 2, 4, 6, 8, 10), "the β grid: the total correlation's weight is β − 1")}

    def regularizer(self, kl, outputs, values, batch):
        tc = total_correlation(outputs.codes, outputs.mean, outputs.log_var)
        return {"regularizer": kl + (values["beta"] - 1) * tc, "total_correlation": tc}


beta_tc_vae = model_factory(BetaTCVAE, "β-TCVAE: the KL plus (β − 1)·total correlation (minibatch-weighted "
                            "sampling), a (β, seed) grid.")
