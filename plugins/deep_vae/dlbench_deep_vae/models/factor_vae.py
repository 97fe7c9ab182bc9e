"""FactorVAE (Kim & Mnih 2018): the KL plus γ times a discriminator's estimate of the total correlation; the
discriminator tells z from z with each dimension permuted across the batch, trained by its own Adam."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dlbench.training import AdamSettings, OptimizerGroup
from dlbench.training.layers import StackedLinear, stack_states
from dlbench.training.seeds import AUXILIARY, derived_seed
from dlbench_deep_vae.factory import model_factory
from dlbench_deep_vae.networks import glorot_initialise, seeded
from dlbench_deep_vae.objective import Axis, Objective

HIDDEN_LAYERS, HIDDEN_UNITS, LEAKY_SLOPE = 6, 1000, 0.2
PROBABILITY_CLIP = 1e-6
# disentanglement_lib's discriminator optimiser.
DISCRIMINATOR_ADAM = AdamSettings(learning_rate=1e-4, betas=(0.5, 0.9), eps=1e-8)


def _widths(num_latent: int) -> list[tuple[int, int]]:
    sizes = [num_latent, *[HIDDEN_UNITS] * HIDDEN_LAYERS, 2]
    return list(zip(sizes[:-1], sizes[1:]))


class Discriminator(nn.Module):
    """One solution's discriminator: 6 dense layers of 1000 with leaky ReLU (0.2), then 2 logits."""

    def __init__(self, num_latent: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width_in, width_out) for width_in, width_out in _widths(num_latent))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return _mlp(self.layers, codes)


class StackedDiscriminator(nn.Module):
    """S discriminators as batched matmuls: codes (S, B, d) -> logits (S, B, 2)."""

    def __init__(self, num_solutions: int, num_latent: int):
        super().__init__()
        self.layers = nn.ModuleList(StackedLinear(num_solutions, width_in, width_out)
                                    for width_in, width_out in _widths(num_latent))

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], num_latent: int) -> StackedDiscriminator:
        """Solution s starts as a `Discriminator` initialised as TensorFlow does, from seeds[s] alone."""
        stack = cls(len(seeds), num_latent)
        stack.load_state_dict(stack_states([
            seeded(derived_seed(seed, AUXILIARY), lambda: glorot_initialise(Discriminator(num_latent))).state_dict()
            for seed in seeds]))
        return stack

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return _mlp(self.layers, codes)


def _mlp(layers: nn.ModuleList, hidden: torch.Tensor) -> torch.Tensor:
    for layer in layers[:-1]:
        hidden = F.leaky_relu(layer(hidden), LEAKY_SLOPE)
    return layers[-1](hidden)


def permute_dimensions(codes: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Each latent dimension permuted independently across the batch (each dimension keeps its marginal): the
    permutation of (s, ·, l) sorts uniform[s, :, l]."""
    return torch.gather(codes, -2, uniform.argsort(dim=-2))


def log_probabilities(logits: torch.Tensor) -> torch.Tensor:
    return torch.log(F.softmax(logits, dim=-1).clamp(PROBABILITY_CLIP, 1 - PROBABILITY_CLIP))


class FactorVAE(Objective):
    model = "factor_vae"
    axes = {"gamma": Axis("gammas", (10, 20, 30, 40, 50, 100), "the γ grid (weights > 0 of the TC estimate)")}

    def auxiliary(self, seeds, num_latent):
        return StackedDiscriminator.from_seeds(seeds, num_latent)

    def optimizer_groups(self, adam):
        return (OptimizerGroup("vae", adam=adam),
                OptimizerGroup("discriminator", "discriminator_loss", ("auxiliary.",), DISCRIMINATOR_ADAM))

    def regularizer(self, kl, outputs, values, batch):
        codes = outputs.codes
        logits = outputs.auxiliary(codes).float()
        tc_estimate = (logits[..., 0] - logits[..., 1]).mean(dim=-1)
        permuted = permute_dimensions(codes, batch.uniform(*codes.shape[1:]))
        # The discriminator maximises ½ E log p(real | z) + ½ E log p(permuted | z_perm); minimised negated.
        discriminator_loss = -0.5 * (log_probabilities(logits)[..., 0].mean(dim=-1)
                                     + log_probabilities(outputs.auxiliary(permuted).float())[..., 1].mean(dim=-1))
        return {"regularizer": kl + values["gamma"] * tc_estimate, "tc_estimate": tc_estimate,
                "discriminator_loss": discriminator_loss}


factor_vae = model_factory(FactorVAE, "FactorVAE: the KL plus γ·a discriminator's total-correlation estimate (the "
                           "discriminator trained by its own Adam), a (γ, seed) grid.")
