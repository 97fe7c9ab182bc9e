"""Independent reference computations for the linear-Gaussian plugin tests: dense matrices,
explicit inverses and log-determinants, Python loops and brute force; nothing here calls the
plugin's objective or solver code."""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch


def dense_sigma_y(gamma: np.ndarray, sigma_v: np.ndarray, noise_var: float) -> np.ndarray:
    return gamma @ sigma_v @ gamma.T + noise_var * np.eye(gamma.shape[0])


def instance_arrays(instance) -> tuple[np.ndarray, np.ndarray, float]:
    return instance.gamma.numpy(), instance.sigma_v.numpy(), instance.noise_var


def random_spd_np(rng: np.random.Generator, dim: int, floor: float = 0.3) -> np.ndarray:
    root = rng.standard_normal((dim, dim))
    return root @ root.T / dim + floor * np.eye(dim)


def dense_loss_np(A, B, sigma_z, sigma_w, sigma_y, beta, lam) -> dict[str, float]:
    """The spec's NLL, KL, tr R and L, one solution, explicit inverse and slogdet."""
    n, m = A.shape
    residual = np.eye(n) - A @ B
    r = residual @ sigma_y @ residual.T + A @ sigma_w @ A.T
    sigma_x = B @ sigma_y @ B.T + sigma_w
    nll = 0.5 * (np.trace(np.linalg.inv(sigma_z) @ r) + n * math.log(2 * math.pi)
                 + np.linalg.slogdet(sigma_z)[1])
    kl = 0.5 * (np.trace(sigma_x) - np.linalg.slogdet(sigma_w)[1] - m)
    return {"nll": nll, "kl": kl, "trace_r": np.trace(r),
            "loss": nll + beta * kl + lam * np.trace(r)}


def dense_loss_torch(A, B, sigma_z, sigma_w, sigma_y, beta: float, lam: float) -> torch.Tensor:
    """The same loss in torch, for autograd: one solution, linalg.inv and slogdet (no Cholesky),
    every matrix entry an independent variable."""
    n, m = A.shape
    eye_n = torch.eye(n, dtype=A.dtype)
    residual = eye_n - A @ B
    r = residual @ sigma_y @ residual.T + A @ sigma_w @ A.T
    sigma_x = B @ sigma_y @ B.T + sigma_w
    nll = 0.5 * (torch.trace(torch.linalg.inv(sigma_z) @ r) + n * math.log(2 * math.pi)
                 + torch.linalg.slogdet(sigma_z)[1])
    kl = 0.5 * (torch.trace(sigma_x) - torch.linalg.slogdet(sigma_w)[1] - m)
    return nll + beta * kl + lam * torch.trace(r)


def autograd_gradients(A, B, sigma_z, sigma_w, sigma_y, beta: float, lam: float):
    """∂L/∂(A, B, Σ_Z, Σ_W) of one solution by autograd of `dense_loss_torch`."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (A, B, sigma_z, sigma_w)]
    loss = dense_loss_torch(*leaves, sigma_y.detach(), beta, lam)
    return dict(zip(("A", "B", "sigma_z", "sigma_w"), torch.autograd.grad(loss, leaves)))


def joint_covariance_x_v(B, sigma_w, gamma, sigma_v, noise_var) -> np.ndarray:
    """Cov of (X, V) with X = B(ΓV + N) + W, as a linear map of the independent (V, N, W)."""
    m, n = B.shape
    s = gamma.shape[1]
    linear_map = np.block([[B @ gamma, B, np.eye(m)],
                           [np.eye(s), np.zeros((s, n)), np.zeros((s, m))]])
    sources = np.zeros((s + n + m, s + n + m))
    sources[:s, :s] = sigma_v
    sources[s:s + n, s:s + n] = noise_var * np.eye(n)
    sources[s + n:, s + n:] = sigma_w
    return linear_map @ sources @ linear_map.T


def brute_force_scores(B, sigma_w, gamma, sigma_v, noise_var) -> dict[str, float]:
    """ρ², SAP, the per-pair Gaussian MI and I_m by loops and exhaustive search over every
    injective assignment of factors to latents."""
    m = B.shape[0]
    s = gamma.shape[1]
    joint = joint_covariance_x_v(B, sigma_w, gamma, sigma_v, noise_var)
    rho2 = np.zeros((m, s))
    for i in range(m):
        for j in range(s):
            rho2[i, j] = joint[i, m + j] ** 2 / (joint[i, i] * joint[m + j, m + j])
    sap = 0.0
    for j in range(s):
        column = sorted((rho2[i, j] for i in range(m)), reverse=True)
        sap += (column[0] - column[1]) / s
    mutual_information = -0.5 * np.log(1 - rho2)
    i_m = brute_force_matching(mutual_information)
    sigma_x = joint[:m, :m]
    mi_xy = 0.5 * (np.linalg.slogdet(sigma_x)[1] - np.linalg.slogdet(sigma_w)[1])
    return {"rho2": rho2, "sap": sap, "mi": mutual_information, "i_m": i_m,
            "mutual_info_xy": mi_xy, "sigma_x": sigma_x}


def brute_force_matching(weights: np.ndarray) -> float:
    """The best sum over one-to-one matchings of the s columns to distinct rows (m >= s)."""
    m, s = weights.shape
    return max(sum(weights[rows[j], j] for j in range(s))
               for rows in itertools.permutations(range(m), s))
