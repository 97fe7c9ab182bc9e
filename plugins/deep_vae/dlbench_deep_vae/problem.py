"""The engine's StackProblem for any objective: the stacked VAE (and the objective's auxiliary network), its
forward pass on a step's batch, the shared terms and the objective's loss."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from dlbench.training import StepBatch
from dlbench_deep_vae import losses, networks
from dlbench_deep_vae.objective import Objective, VAEOutputs


class VAEProblem:
    """Solutions of one stage: each with its initial seed (or weights) and its value of every axis of the objective."""

    def __init__(self, objective: Objective, values: Mapping[str, torch.Tensor], init_seeds: Sequence[int],
                 num_channels: int, num_latent: int, architecture: str, likelihood: str,
                 initial_states: Sequence[Mapping[str, torch.Tensor]] | None = None):
        self.objective, self.values = objective, dict(values)
        self.init_seeds, self.initial_states = list(init_seeds), initial_states
        self.num_channels, self.num_latent = num_channels, num_latent
        self.architecture, self.likelihood = architecture, likelihood
        self._stack_values: dict[tuple, dict[str, torch.Tensor]] = {}

    def build(self, solutions: Sequence[int]) -> networks.StackedConvVAE:
        seeds = [self.init_seeds[s] for s in solutions]
        if self.initial_states is not None:
            network = networks.StackedConvVAE.from_states([self.initial_states[s] for s in solutions],
                                                          self.num_channels, self.num_latent, self.architecture)
        else:
            network = networks.StackedConvVAE.from_seeds(seeds, self.num_channels, self.num_latent, self.architecture)
        auxiliary = self.objective.auxiliary(seeds, self.num_latent)
        if auxiliary is not None:
            network.auxiliary = auxiliary.to(next(network.parameters()).device)
        return network

    def _values_of(self, solutions: tuple[int, ...], device: torch.device) -> dict[str, torch.Tensor]:
        """Each axis's value per solution of a stack, moved to the device once (not every step)."""
        key = (solutions, device)
        if key not in self._stack_values:
            index = torch.as_tensor(solutions)
            self._stack_values[key] = {axis: value[index].to(device) for axis, value in self.values.items()}
        return self._stack_values[key]

    def loss_terms(self, network, batch: StepBatch) -> dict[str, torch.Tensor]:
        images = batch.observations.to(torch.float32) / 255
        # The losses in float32 whatever precision the network ran in (bf16 autocast).
        mean, log_var, codes, logits = (output.float() for output in
                                        network(images, batch.normal(images.shape[1], self.num_latent)))
        terms = losses.vae_terms(images, mean, log_var, logits, self.likelihood)
        values = self._values_of(batch.solutions, images.device)
        outputs = VAEOutputs(images, mean, log_var, codes, logits, getattr(network, "auxiliary", None))
        terms.update(self.objective.loss(terms, outputs, values, batch))
        return terms
