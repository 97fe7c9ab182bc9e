"""What a plugin gives the engine (engine protocol 2): a `StackProblem`, the `StepBatch` it is handed each step, and the
optimiser groups a `TrainingPlan` trains.

    class MyProblem:
        def build(self, solutions):                 # the stacked network of these solutions
            ...
        def loss_terms(self, network, batch):       # {"total": (S,), other terms (S,) or (S, k)}
            ...

Protocol 1 (dlbench 0.1) called `loss_terms(network, solutions, observations, noise_generators)`; protocol 2 hands one
`StepBatch` instead, and a plan may train several optimiser groups, each over its own parameters and objective.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import torch
from torch import nn

from dlbench.errors import ConfigError

ENGINE_PROTOCOL = 2
TOTAL = "total"  # the loss term the default optimiser group minimises
FUSED_ADAM_DEVICES = frozenset({"cpu", "cuda"})


@dataclass(frozen=True)
class AdamSettings:
    """Adam's settings (PyTorch's Adam: no weight decay). The defaults are the deep protocol's."""

    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def build(self, parameters: Sequence[nn.Parameter], capturable: bool = False) -> torch.optim.Adam:
        """Adam over `parameters`, fused where the device has it (one kernel for every tensor, no host reads);
        `capturable` for a step captured in a CUDA graph (its step counts stay on the device)."""
        devices = {parameter.device.type for parameter in parameters}
        fused = bool(devices) and devices <= FUSED_ADAM_DEVICES
        return torch.optim.Adam(parameters, lr=self.learning_rate, betas=self.betas, eps=self.eps, fused=fused or None,
                                capturable=capturable)

    def describe(self) -> dict[str, Any]:
        """JSON-ready, as records and cache keys show it."""
        return {"optimizer": "adam", "learning_rate": self.learning_rate, "adam_betas": list(self.betas),
                "adam_eps": self.eps}


@dataclass(frozen=True)
class OptimizerGroup:
    """Parameters trained by one optimiser on one objective.

    Attributes:
        name: the group's name (its optimiser state's name in checkpoints).
        objective: the loss term (S,) this group's optimiser minimises.
        parameters: prefixes of the network's parameter names in this group; empty: every parameter no other group
            claims. A group's optimiser receives the gradient of its own objective with respect to its own parameters
            only (as disentanglement_lib's FactorVAE trains its discriminator beside the VAE).
        adam: its optimiser's settings.
    """

    name: str = "model"
    objective: str = TOTAL
    parameters: tuple[str, ...] = ()
    adam: AdamSettings = field(default_factory=AdamSettings)


DEFAULT_GROUPS = (OptimizerGroup(),)


class StepBatch:
    """What one training step of a stack hands the problem.

    Attributes:
        observations: (S, B, *observation_shape), as the dataset stores them (uint8 images), on the device.
        step: the stage's step index (0-based), a 0-d int64 tensor on the device.
        solutions: the stack's solutions, as indices into the stage's solutions.
    Random draws come from `normal` and `uniform`: solution s's from its own stream alone, so a solution's draws do
    not depend on the stack it is trained in. A step must make the same draws (kinds and shapes, in the same order)
    every step.
    """

    def __init__(self, observations: torch.Tensor, step: torch.Tensor, solutions: Sequence[int], noise):
        self.observations, self.step, self.solutions = observations, step, tuple(solutions)
        self._noise = noise

    def normal(self, *shape: int) -> torch.Tensor:
        """(S, *shape) standard normal draws."""
        return self._noise.draw(torch.randn, shape)

    def uniform(self, *shape: int) -> torch.Tensor:
        """(S, *shape) uniform draws in [0, 1)."""
        return self._noise.draw(torch.rand, shape)


def check_problem(problem) -> None:
    """Refuse, in one line, a problem written for engine protocol 1 (loss_terms of four arguments)."""
    import inspect

    parameters = [p for p in inspect.signature(problem.loss_terms).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(parameters) != 2:
        raise ConfigError(f"{type(problem).__name__}.loss_terms takes ({', '.join(p.name for p in parameters)}); "
                          f"engine protocol {ENGINE_PROTOCOL} calls loss_terms(network, batch) with one "
                          "dlbench.training.StepBatch; see the README, 'Plugin API versions'")


class StackProblem(Protocol):
    """What an SGD-trained plugin gives the engine for one training stage (engine protocol 2)."""

    def build(self, solutions: Sequence[int]) -> nn.Module:
        """The stacked network of these solutions (indices into the stage's solutions), parameters with a leading
        solution axis, each solution initialised as it would be alone."""
        ...

    def loss_terms(self, network: nn.Module, batch: StepBatch) -> dict[str, torch.Tensor]:
        """Per-solution loss terms of one step: each (S,) or (S, k); every optimiser group's objective among them
        ("total" for the default group)."""
        ...
