"""What makes one deep model differ from another: its objective, written as disentanglement_lib writes its VAEs
(models/beta_tc_vae.py is a whole model in 31 lines; the README's "A deep model of your own" walks through it.)

Every model's loss is reconstruction + regularizer, per solution. An objective declares its solution axes (each a
factory parameter holding that axis's values; every solution of the grid gets its own value of each, as an (S,)
tensor in `values`), its fixed settings, and optionally an auxiliary network trained by its own optimiser group
(FactorVAE's discriminator). The plugin does the rest: the grid over the axes and seeds, stacking, training,
caching, scoring and figures.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from dlbench.training import AdamSettings, OptimizerGroup, StepBatch


@dataclass(frozen=True)
class Axis:
    """A solution axis: the factory parameter that lists its values, its default values, what it means and which
    values are accepted."""

    parameter: str
    default: tuple[float, ...]
    doc: str
    accepted: str = "a non-empty list of distinct numbers > 0"
    valid: Callable[[float], bool] = lambda value: value > 0


@dataclass(frozen=True)
class Setting:
    """A fixed setting of an objective (the same for every solution), a factory parameter of the same name."""

    default: float
    doc: str
    accepted: str = "a number > 0"
    valid: Callable[[float], bool] = lambda value: value > 0


@dataclass(frozen=True)
class VAEOutputs:
    """One step's forward pass of a stack, each (S, B, ...): images in [0, 1], the encoder's μ and log σ², the
    sample z = μ + σ ⊙ ε and the logits decoded from it."""

    images: torch.Tensor
    mean: torch.Tensor
    log_var: torch.Tensor
    codes: torch.Tensor
    logits: torch.Tensor
    auxiliary: nn.Module | None = None  # the objective's own stacked network, when it has one


class Objective(abc.ABC):
    """A deep model's loss (see the module docstring). Subclasses set `model` and `axes` and write `regularizer`."""

    model: str = ""
    axes: Mapping[str, Axis] = {}
    settings: Mapping[str, Setting] = {}
    default_steps: int = 300_000  # disentanglement_lib's; the paper's β-VAE trains 150,000
    default_architecture: str = "dlib_conv"
    # A two-stage protocol: the objective of the stage this one continues (over a subset of this one's axes).
    continues: type[Objective] | None = None

    def __init__(self, **settings: float):
        self.values = {name: settings.get(name, setting.default) for name, setting in self.settings.items()}

    @abc.abstractmethod
    def regularizer(self, kl: torch.Tensor, outputs: VAEOutputs, values: Mapping[str, torch.Tensor],
                    batch: StepBatch) -> dict[str, torch.Tensor]:
        """{"regularizer": (S,), any other terms worth recording (S,)} of one step: kl (S,), the forward pass, each
        axis's value per solution (S,), and the engine's batch (its step index and per-solution random draws)."""

    def loss(self, terms: Mapping[str, torch.Tensor], outputs: VAEOutputs, values: Mapping[str, torch.Tensor],
             batch: StepBatch) -> dict[str, torch.Tensor]:
        """The step's terms beyond the shared ones, with "total" = recon + regularizer."""
        extra = self.regularizer(terms["kl"], outputs, values, batch)
        return {**extra, "total": terms["recon"] + extra["regularizer"]}

    def auxiliary(self, seeds: Sequence[int], num_latent: int) -> nn.Module | None:
        """A stacked network of these solutions' seeds trained beside the VAE by its own optimiser group; its
        parameters are named "auxiliary." in the network and in the saved state."""
        return None

    def optimizer_groups(self, adam: AdamSettings) -> tuple[OptimizerGroup, ...]:
        """Every parameter in one Adam minimising "total", unless the objective trains an auxiliary network."""
        return (OptimizerGroup(adam=adam),)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the objective and its fixed settings (part of every cache key and record)."""
        return {"objective": self.model, **self.values}


def gaussian_log_density(sample: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(sample; mean, exp(log_var)), elementwise."""
    return -0.5 * ((sample - mean).square() * torch.exp(-log_var) + log_var + math.log(2 * math.pi))
