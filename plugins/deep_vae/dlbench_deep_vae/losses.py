"""The terms every deep model of this plugin shares, one value per solution: reconstruction, KL and the l2 error.

Inputs carry leading (S, B) axes (a stack) or (B,) alone (one solution): every term sums over pixels or latents and
averages over the batch axis, so it is (S,) for a stack and a scalar for one solution. Never averaged over solutions:
summing a stack's totals gives each solution exactly its own gradient.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

PIXEL_DIMS = (-3, -2, -1)
# The reconstruction term: disentanglement_lib's bernoulli_loss (the paper's, also for RGB with soft targets) or
# its l2_loss (the squared error of sigmoid(logits), the same quantity as the λβ-VAE's penalty).
LIKELIHOODS = ("bernoulli", "l2")


def kl_per_latent(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, I)) of each latent, averaged over the batch: (S, d) for a stack."""
    return (0.5 * (mean.square() + log_var.exp() - log_var - 1)).mean(dim=-2)


def vae_terms(images: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, logits: torch.Tensor,
              likelihood: str = "bernoulli") -> dict[str, torch.Tensor]:
    """recon, kl, l2 and kl_per_latent of each solution.

    images (S, B, C, H, W) in [0, 1]; mean, log_var (S, B, d); logits (S, B, C, H, W) decoded from the
    reparameterised sample. recon is the Bernoulli BCE on the logits, or the l2 term itself for likelihood "l2";
    l2 = ‖x − sigmoid(logits)‖² is reported for every model (the λβ-VAE also weights it)."""
    l2 = (images - torch.sigmoid(logits)).square().sum(dim=PIXEL_DIMS).mean(dim=-1)
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(logits, images, reduction="none").sum(dim=PIXEL_DIMS).mean(dim=-1)
    else:
        recon = l2
    per_latent = kl_per_latent(mean, log_var)
    return {"recon": recon, "kl": per_latent.sum(dim=-1), "l2": l2, "kl_per_latent": per_latent}
