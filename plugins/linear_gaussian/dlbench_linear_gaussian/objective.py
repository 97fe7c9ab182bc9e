"""The population β-VAE / λβ-VAE objective of the linear-Gaussian model, its gradients and its
exact metrics, all batched: every function takes a leading batch dimension P of solutions.

Shapes: A (P, n, m), B (P, m, n), Σ_Z (P, n, n), Σ_W (P, m, m); β and λ are (P,) tensors.
"""
from __future__ import annotations

import math

import torch

from dlbench import matched_information, top_two_gap
from dlbench_linear_gaussian.instance import Instance


def _eye(size: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(size, dtype=like.dtype, device=like.device)


def symmetrize(matrix: torch.Tensor) -> torch.Tensor:
    return 0.5 * (matrix + matrix.mT)


def latent_covariance(B: torch.Tensor, sigma_w: torch.Tensor, sigma_y: torch.Tensor) -> torch.Tensor:
    """Σ_X = B Σ_Y Bᵀ + Σ_W."""
    return B @ sigma_y @ B.mT + sigma_w


def _trace(matrix: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(matrix, dim1=-2, dim2=-1).sum(-1)


def _logdet_from_cholesky(cholesky: torch.Tensor) -> torch.Tensor:
    return 2 * torch.log(torch.diagonal(cholesky, dim1=-2, dim2=-1)).sum(-1)


def _logdet_spd(matrix: torch.Tensor) -> torch.Tensor:
    return _logdet_from_cholesky(torch.linalg.cholesky(matrix))


def loss_terms(A, B, sigma_z, sigma_w, sigma_y, beta, lam) -> dict[str, torch.Tensor]:
    """NLL, KL, tr R and the total L = NLL + β KL + λ tr R, each of shape (P,)."""
    return loss_and_gradients(A, B, sigma_z, sigma_w, sigma_y, beta, lam, with_gradients=False)[0]


def loss_and_gradients(A, B, sigma_z, sigma_w, sigma_y, beta, lam, with_gradients=True,
                       cholesky_factors=None):
    """The loss terms and, in closed form, ∂L/∂A, ∂L/∂B and the symmetric ∂L/∂Σ_Z, ∂L/∂Σ_W,
    sharing one factorisation of each covariance. With P = Σ_Z⁻¹ and M = P + 2λI:
    ∂L/∂A = M(AΣ_X − Σ_Y Bᵀ), ∂L/∂B = AᵀM(AB − I)Σ_Y + βBΣ_Y, ∂L/∂Σ_Z = ½(P − PRP),
    ∂L/∂Σ_W = ½AᵀMA + ½β(I − Σ_W⁻¹).

    Given cholesky_factors = (L_Z, L_W) with Σ = LLᵀ + const·I, the gradients for L_Z and L_W,
    2 (∂L/∂Σ) L, come instead of those for Σ_Z and Σ_W; for L_Z as PL − P(R(PL)), which never
    forms PRP."""
    n, m = A.shape[-2], A.shape[-1]
    c = B @ sigma_y
    sigma_x = c @ B.mT + sigma_w
    # R = Σ_Y − AC − (AC)ᵀ + AΣ_XAᵀ = Σ_Y + AD + (AD)ᵀ with D = ½Σ_XAᵀ − C: one product
    # [A, Dᵀ] [D; Aᵀ] of inner size 2m, and no n×n transposes.
    half_d = 0.5 * sigma_x @ A.mT - c
    r = torch.baddbmm(sigma_y, torch.cat([A, half_d.mT], -1), torch.cat([half_d, A.mT], -2))
    z_cholesky = torch.linalg.cholesky(sigma_z)
    w_cholesky = torch.linalg.cholesky(sigma_w)
    precision_z = torch.cholesky_inverse(z_cholesky)
    trace_pr = (precision_z * r).sum((-2, -1))  # tr(PR) for symmetric P
    nll = 0.5 * (trace_pr + n * math.log(2 * math.pi) + _logdet_from_cholesky(z_cholesky))
    kl = 0.5 * (_trace(sigma_x) - _logdet_from_cholesky(w_cholesky) - m)
    trace_r = _trace(r)
    terms = {"nll": nll, "kl": kl, "trace_r": trace_r, "loss": nll + beta * kl + lam * trace_r}
    if not with_gradients:
        return terms, None
    two_lam = 2 * lam[:, None, None]
    weight_a = precision_z @ A + two_lam * A  # M A, so Aᵀ M = (M A)ᵀ
    beta = beta[:, None, None]
    residual_a = A @ sigma_x - c.mT
    sigma_w_gradient = 0.5 * weight_a.mT @ A + 0.5 * beta * (
        _eye(m, A) - torch.cholesky_inverse(w_cholesky))
    grads = {
        "A": precision_z @ residual_a + two_lam * residual_a,
        # AᵀM(AB − I)Σ_Y = ((MA)ᵀA) C − (MA)ᵀΣ_Y, without the n×n product A C
        "B": (weight_a.mT @ A) @ c - weight_a.mT @ sigma_y + beta * c,
    }
    if cholesky_factors is None:
        grads["sigma_z"] = 0.5 * (precision_z - precision_z @ r @ precision_z)
        grads["sigma_w"] = sigma_w_gradient
    else:
        factor_z, factor_w = cholesky_factors
        p_factor = precision_z @ factor_z
        grads["L_Z"] = p_factor - precision_z @ (r @ p_factor)
        grads["L_W"] = 2 * sigma_w_gradient @ factor_w
    return terms, grads


def spectral_norm(B: torch.Tensor) -> torch.Tensor:
    """‖B‖₂, the largest singular value, per solution: √λ_max(BBᵀ), an m×m problem."""
    return torch.linalg.eigvalsh(B @ B.mT)[..., -1].clamp(min=0).sqrt()


def factor_correlations(B, sigma_w, instance: Instance) -> torch.Tensor:
    """ρ²_ij = Cov(X_i, V_j)² / ((Σ_X)_ii (Σ_V)_jj), shape (P, m, s)."""
    sigma_x = latent_covariance(B, sigma_w, instance.sigma_y)
    cross = B @ instance.cov_y_v
    latent_var = torch.diagonal(sigma_x, dim1=-2, dim2=-1)
    factor_var = torch.diagonal(instance.sigma_v)
    return cross**2 / (latent_var[..., :, None] * factor_var)


def sap_from_correlations(rho2: torch.Tensor) -> torch.Tensor:
    """SAP = mean over factors of the gap between the two largest ρ² over latents."""
    return top_two_gap(rho2).mean(-1)


def mutual_information_matrix(rho2: torch.Tensor) -> torch.Tensor:
    """I(X_i; V_j) = −½ log(1 − ρ²_ij) in nats, for jointly Gaussian scalars."""
    return -0.5 * torch.log1p(-rho2.clamp(max=1.0))


def exact_metrics(A, B, sigma_z, sigma_w, instance: Instance, beta, lam) -> dict[str, torch.Tensor]:
    """Every closed-form score of a batch of solutions, each of shape (P,)."""
    sigma_y = instance.sigma_y
    terms = loss_terms(A, B, sigma_z, sigma_w, sigma_y, beta, lam)
    rho2 = factor_correlations(B, sigma_w, instance)
    mutual_information = mutual_information_matrix(rho2)
    sigma_x = latent_covariance(B, sigma_w, sigma_y)
    return {
        "nll": terms["nll"],
        "kl": terms["kl"],
        "loss": terms["loss"],
        "sap": sap_from_correlations(rho2),
        # I_m: Hungarian matching of latents to factors, summed over the s pairs (nats)
        "i_m": matched_information(mutual_information),
        "mutual_info_xy": 0.5 * (_logdet_spd(sigma_x) - _logdet_spd(sigma_w)),
        "b_norm": spectral_norm(B),
        "min_eig_sigma_w": torch.linalg.eigvalsh(sigma_w)[..., 0],
    }
