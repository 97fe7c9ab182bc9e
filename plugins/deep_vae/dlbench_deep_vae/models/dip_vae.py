"""DIP-VAE-I and -II (Kumar et al. 2018): the KL plus a penalty driving a covariance of the codes to the identity,
off-diagonal entries weighted λ_od and diagonal ones λ_d = lambda_d_factor·λ_od."""
from __future__ import annotations

import torch

from dlbench_deep_vae.factory import model_factory
from dlbench_deep_vae.objective import Axis, Objective, Setting


def batch_covariance(mean: torch.Tensor) -> torch.Tensor:
    """Cov[μ] over the batch, E[μ μᵀ] − E[μ] E[μ]ᵀ (divided by B): (S, d, d) from (S, B, d)."""
    centre = mean.mean(dim=-2)
    return mean.transpose(-1, -2) @ mean / mean.shape[-2] - centre.unsqueeze(-1) * centre.unsqueeze(-2)


def covariance_penalty(covariance: torch.Tensor, lambda_od: torch.Tensor, lambda_d: torch.Tensor) -> torch.Tensor:
    """λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)², per solution."""
    diagonal = covariance.diagonal(dim1=-2, dim2=-1)
    off_diagonal = covariance - torch.diag_embed(diagonal)
    return lambda_od * off_diagonal.square().sum(dim=(-2, -1)) + lambda_d * (diagonal - 1).square().sum(dim=-1)


class DipVAEI(Objective):
    model = "dip_vae_i"
    axes = {"lambda_od": Axis("lambda_ods", (1, 2, 5, 10, 20, 50), "the λ_od grid (off-diagonal weights > 0)")}
    settings = {"lambda_d_factor": Setting(10, "λ_d = lambda_d_factor·λ_od (diagonal weight)")}

    def covariance(self, outputs) -> torch.Tensor:
        return batch_covariance(outputs.mean)

    def regularizer(self, kl, outputs, values, batch):
        lambda_od = values["lambda_od"]
        penalty = covariance_penalty(self.covariance(outputs), lambda_od, self.values["lambda_d_factor"] * lambda_od)
        return {"regularizer": kl + penalty, "covariance_penalty": penalty}


class DipVAEII(DipVAEI):
    model = "dip_vae_ii"
    settings = {"lambda_d_factor": Setting(1, "λ_d = lambda_d_factor·λ_od (diagonal weight)")}

    def covariance(self, outputs) -> torch.Tensor:
        """Cov[μ] + E_batch[diag σ²]: the covariance of z under the aggregate posterior."""
        return batch_covariance(outputs.mean) + torch.diag_embed(outputs.log_var.exp().mean(dim=-2))


dip_vae_i = model_factory(DipVAEI, "DIP-VAE-I: the KL plus a penalty driving Cov[μ] to the identity, a (λ_od, "
                          "seed) grid.")
dip_vae_ii = model_factory(DipVAEII, "DIP-VAE-II: the KL plus a penalty driving Cov[μ] + E[diag σ²] to the identity, "
                           "a (λ_od, seed) grid.")
