"""What a ground-truth dataset, a model and a metric are: the whole contract, as Protocols.

Plugins implement these structurally (no base class to inherit). Tensors that scale with data
live on the run's device.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import torch


@runtime_checkable
class GroundTruthDataset(Protocol):
    """Observations generated from known factors of variation.

    `sample` draws factors and matching observations on `device`. Factors are a (num, K) tensor:
    int64 class indices for discrete datasets, float values for continuous ones.
    """

    name: str
    source: str  # "official", "procedural" or "synthetic": where the observations come from
    factor_names: tuple[str, ...]
    observation_shape: tuple[int, ...]
    device: torch.device

    def sample(self, num: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(factors (num, K), observations (num, *observation_shape)) on `device`."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for the run record: name, source, sizes, parameters."""
        ...


@runtime_checkable
class DiscreteGroundTruthDataset(GroundTruthDataset, Protocol):
    """A full factorial grid of discrete factors, one observation per grid point.

    Image index = ravel_multi_index(classes, factor_sizes) in C order (last factor fastest).
    Images are uint8 until a batch is on the device.
    """

    factor_sizes: tuple[int, ...]
    factor_values: tuple[torch.Tensor, ...]

    def __len__(self) -> int:
        ...

    def sample_factors(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """(num, K) int64 class indices drawn uniformly per factor, on `device`."""
        ...

    def observations_from_factors(self, factors: torch.Tensor) -> torch.Tensor:
        """(num, *observation_shape) observations for (num, K) class indices, on `device`."""
        ...


@runtime_checkable
class Model(Protocol):
    """A representation learner.

    A model may hold a batch of independent solutions (random starts, grid cells) as one tensor
    computation; `solution_axes` names those batch axes and their labels in order (empty for a
    single model), and every per-solution output has them as leading dimensions.
    """

    name: str

    @property
    def solution_axes(self) -> Mapping[str, list]:
        ...

    def fit(self, dataset: GroundTruthDataset, *, device: torch.device, seed: int,
            workdir: Path, progress: bool = True) -> None:
        """Train or solve on `dataset`. Checkpoints written under `workdir` survive an
        interruption, so a rerun can resume from them; they are removed once the run's record
        is complete."""
        ...

    def representation(self, observations: torch.Tensor) -> torch.Tensor:
        """Codes (*solution_shape, num, d) for observations (num, ...)."""
        ...

    def hyperparameters(self) -> dict[str, Any]:
        """JSON-ready hyperparameters, as the run record shows them."""
        ...

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to restore the fitted model; saved as state.npz beside the record."""
        ...

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        ...


@runtime_checkable
class ExactMetricsModel(Model, Protocol):
    """A model that can score itself in closed form, without sampling."""

    def exact_metrics(self) -> dict[str, torch.Tensor]:
        """Metric name -> tensor of shape `solution_shape` (a 0-d tensor for a single model)."""
        ...


@runtime_checkable
class PosteriorModel(Protocol):
    """The capability of a model with a Gaussian encoder q(z|x) = N(mean, diag(exp(log_variance))),
    checked on its own so that anything exposing it can be scored by KL per latent."""

    def posterior_parameters(self, observations: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log variance) of each latent, each (*solution_shape, num, d)."""
        ...


@runtime_checkable
class Metric(Protocol):
    """A disentanglement score of a fitted model on a ground-truth dataset."""

    name: str

    def __call__(self, model: Model, dataset: GroundTruthDataset, *,
                 generator: torch.Generator) -> dict[str, Any]:
        """Score name -> value (a float, or a tensor of shape `solution_shape`), plus provenance
        entries (sampling protocol, sample counts, seed, mode) as JSON-ready values."""
        ...
