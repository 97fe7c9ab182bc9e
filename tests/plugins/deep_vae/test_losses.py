from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlbench_deep_vae import networks
from dlbench_deep_vae.losses import kl_per_latent, vae_terms
from dlbench_deep_vae.models.lambda_beta_vae import LambdaBetaVAE

NUM_LATENT = 10


def loss_terms(images, mean, log_var, logits, beta, lam) -> dict:
    """The shared terms and the λβ-VAE's total (β-VAE at λ = 0)."""
    terms = vae_terms(images, mean, log_var, logits)
    total = LambdaBetaVAE().loss(terms, None, {"beta": beta, "lambda": lam}, None)["total"]
    return {"recon": terms["recon"], "kl": terms["kl"], "l2": terms["l2"], "total": total}


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


def _hand_terms(images, mean, log_var, logits, beta, lam):
    """Each term of each solution by its formula, in float64 loops."""
    num_solutions, batch_size = images.shape[:2]
    terms = {name: np.zeros(num_solutions) for name in ("recon", "kl", "l2", "total")}
    kl_latent = np.zeros(mean.shape[0::2])
    for s in range(num_solutions):
        for b in range(batch_size):
            for index in np.ndindex(images.shape[2:]):
                x, probability = images[s, b][index], _sigmoid(logits[s, b][index])
                terms["recon"][s] -= x * math.log(probability) + (1 - x) * math.log(1 - probability)
                terms["l2"][s] += (x - probability) ** 2
            for j in range(mean.shape[2]):
                kl = 0.5 * (mean[s, b, j] ** 2 + math.exp(log_var[s, b, j]) - log_var[s, b, j] - 1)
                terms["kl"][s] += kl
                kl_latent[s, j] += kl / batch_size
        for name in ("recon", "kl", "l2"):
            terms[name][s] /= batch_size
        terms["total"][s] = terms["recon"][s] + beta[s] * terms["kl"][s] + lam[s] * terms["l2"][s]
    return terms, kl_latent


@pytest.mark.parametrize("batch_size", [2, 3])
def test_terms_against_their_formulas_on_a_tiny_batch(batch_size):
    rng = np.random.default_rng(batch_size)
    num_solutions, pixels, latents = 2, (2, 2, 3), 3
    images = rng.uniform(size=(num_solutions, batch_size, *pixels))
    images[0, 0, 0] = [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]  # hard targets as well as soft ones
    logits = rng.normal(scale=3.0, size=images.shape)
    mean = rng.normal(size=(num_solutions, batch_size, latents))
    log_var = rng.normal(size=mean.shape)
    beta, lam = np.array([1.0, 32.0]), np.array([0.0, 6.0])

    expected, expected_kl_latent = _hand_terms(images, mean, log_var, logits, beta, lam)
    terms = loss_terms(*map(torch.from_numpy, (images, mean, log_var, logits, beta, lam)))
    assert terms.keys() == expected.keys()
    for name, value in terms.items():
        assert value.shape == (num_solutions,)
        np.testing.assert_allclose(value.numpy(), expected[name], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(kl_per_latent(torch.from_numpy(mean), torch.from_numpy(log_var)).numpy(),
                               expected_kl_latent, rtol=1e-12)


def test_one_solution_without_a_stack_axis_gives_scalars():
    images, logits = torch.rand(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    mean, log_var = torch.randn(3, 2), torch.randn(3, 2)
    stacked = loss_terms(images[None], mean[None], log_var[None], logits[None], torch.tensor([4.0]),
                         torch.tensor([2.0]))
    alone = loss_terms(images, mean, log_var, logits, torch.tensor(4.0), torch.tensor(2.0))
    for name, value in alone.items():
        assert value.shape == ()
        torch.testing.assert_close(value, stacked[name][0])


def test_kl_vanishes_at_the_prior():
    assert kl_per_latent(torch.zeros(2, 5, NUM_LATENT), torch.zeros(2, 5, NUM_LATENT)).abs().max() == 0


@pytest.mark.parametrize("architecture", networks.ARCHITECTURES)
def test_summed_stack_loss_gives_each_solution_its_own_gradient(architecture):
    seeds, num_channels = [0, 1, 2], 3
    beta, lam = torch.tensor([1.0, 8.0, 32.0]), torch.tensor([0.0, 2.0, 8.0])
    generator = torch.Generator().manual_seed(11)
    images = torch.rand(len(seeds), 4, num_channels, 64, 64, generator=generator)
    noise = torch.randn(len(seeds), 4, NUM_LATENT, generator=generator)

    stack = networks.StackedConvVAE.from_seeds(seeds, num_channels, NUM_LATENT, architecture)
    mean, log_var, _, logits = stack(images, noise)
    loss_terms(images, mean, log_var, logits, beta, lam)["total"].sum().backward()
    stacked_gradients = {name: parameter.grad for name, parameter in stack.named_parameters()}
    for index, seed in enumerate(seeds):
        solution = networks.build_solution(seed, num_channels, NUM_LATENT, architecture)
        mean, log_var, _, logits = solution(images[index], noise[index])
        loss_terms(images[index], mean, log_var, logits, beta[index], lam[index])["total"].backward()
        for name, parameter in solution.named_parameters():
            # Float32 sums over 64·64·C pixels reordered by the grouped kernels: relative agreement.
            scale = parameter.grad.abs().max().item()
            torch.testing.assert_close(stacked_gradients[name][index], parameter.grad, rtol=1e-4, atol=1e-5 * scale,
                                       msg=f"{name} of solution {index}")
