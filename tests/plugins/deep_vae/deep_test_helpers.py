"""The tiny λβ-VAE experiment the deep CLI tests run: 3-latent dSprites stand-in, 2 β × 2 λ × 1 seed."""
from __future__ import annotations


def tiny_lbvae_gin(training_steps: int, beta_steps: int, log_every: int, checkpoint_every: int | None = None) -> str:
    lines = [
        'dataset.name = "dsprites"',
        'dataset.source = "procedural"',
        "dsprites.factor_sizes = [1, 3, 2, 4, 6, 6]",
        'model.name = "lambda_beta_vae"',
        "model.batch_size = 8",
        f"model.training_steps = {training_steps}",
        "encoder.num_latent = 3",
        f"lambda_beta_vae.beta_steps = {beta_steps}",
        "lambda_beta_vae.betas = [1, 8]",
        "lambda_beta_vae.lambdas = [0, 2]",
        "lambda_beta_vae.seeds = [0]",
        f"lambda_beta_vae.log_every = {log_every}",
        'evaluation.metrics = ["mig"]',
        "mig.num_train = 300",
    ]
    if checkpoint_every is not None:
        lines.append(f"lambda_beta_vae.checkpoint_every = {checkpoint_every}")
    return "\n".join(lines) + "\n"


def tiny_factor_vae_gin(training_steps: int, log_every: int, checkpoint_every: int) -> str:
    """A FactorVAE of two γ (two optimiser groups, the VAE's and the discriminator's) small enough for a test."""
    return "\n".join([
        'dataset.name = "dsprites"',
        'dataset.source = "procedural"',
        "dsprites.factor_sizes = [1, 3, 2, 4, 6, 6]",
        'model.name = "factor_vae"',
        "model.batch_size = 8",
        f"model.training_steps = {training_steps}",
        "encoder.num_latent = 3",
        "factor_vae.gammas = [10, 40]",
        "factor_vae.seeds = [0]",
        f"factor_vae.log_every = {log_every}",
        f"factor_vae.checkpoint_every = {checkpoint_every}",
        'evaluation.metrics = ["mig"]',
        "mig.num_train = 300",
    ]) + "\n"
