"""What a ground-truth dataset, a model and a metric are: the whole contract, as Protocols.

Plugins implement these structurally (no base class to inherit); `dlbench.testing` checks an object
against them by capability. Tensors that scale with data live on the run's device.

Observations: a dataset yields them as it stores them (images are uint8 (num, C, H, W), with
`observation.float() / 255` the image in [0, 1]; the linear-Gaussian data are float64 (num, n)), on
the dataset's device. A model's `representation` receives exactly that and converts it itself, so
every metric and every plugin sees the same input whatever model it scores.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch is imported by whoever builds these objects, not by the contract
    import torch

    from dlbench.fitting import FitContext


@dataclass(frozen=True)
class OfficialFiles:
    """The published files a dataset factory can build from, as its `official_files` attribute, so that
    `dlbench data list | prepare | verify` can find and check them for any registered dataset."""

    names: tuple[str, ...]  # file names looked for in the data directory, preferred first
    checks: Mapping[str, Any] = field(default_factory=dict)  # file name -> FileCheck (size and checksum)
    strict: bool = True  # a checksum mismatch is fatal (False: a warning, for files that changed upstream)


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

    def factors_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(num, K) int64 class indices of observation indices (num,) in [0, len), on `device`."""
        ...

    def observations_from_factors(self, factors: torch.Tensor) -> torch.Tensor:
        """(num, *observation_shape) observations for (num, K) class indices, on `device`."""
        ...


@runtime_checkable
class Model(Protocol):
    """A representation learner.

    A model may hold a batch of independent solutions (random starts, grid cells, seeds) as one
    tensor computation; `solution_axes` names those batch axes and their labels in order (empty for
    a single model), and every per-solution output has them as leading dimensions.
    `replicate_axes` names the solution axes whose values are replicates of one setting (random
    starts, seeds): summaries average over them and count them. A model may also declare
    `axis_parameters` ({axis: factory parameter holding that axis's list of values}) so that
    `dlbench sweep --split AXIS=N` can cut its stack into smaller runs.
    """

    name: str
    replicate_axes: tuple[str, ...]

    @property
    def solution_axes(self) -> Mapping[str, list]:
        ...

    def fit(self, dataset: GroundTruthDataset, context: FitContext) -> None:
        """Train or solve on `dataset`, on `context.device`, from `context.seed`.

        Resumable fits save their progress with `context.save_checkpoint(name, state)` and look for it
        with `context.load_checkpoint(name)` when they start: a fit interrupted at any moment and
        started again on the same context's workdir ends with the same result. Training telemetry
        (loss curves, notes) goes through `context.log` and `context.note` into the run record."""
        ...

    def representation(self, observations: torch.Tensor) -> torch.Tensor:
        """Codes (*solution_shape, num, d) for observations (num, ...) exactly as the dataset yields them (see
        the module docstring), on the observations' device. Called under `torch.inference_mode()`."""
        ...

    def hyperparameters(self) -> dict[str, Any]:
        """JSON-ready hyperparameters, as the run record shows them; asked right after fit, so they may include
        settings fit resolved (defaults that depend on the dataset)."""
        ...

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to restore the fitted model, as flat named tensors; saved as state.npz beside the
        record."""
        ...

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore a fitted model; refuse (dlbench.RecordError naming the entry) a state whose names, shapes or
        dtypes are not what this model's configuration produces."""
        ...


@runtime_checkable
class ExactMetricsModel(Model, Protocol):
    """A model that can score itself in closed form, without sampling."""

    def exact_metrics(self) -> dict[str, torch.Tensor]:
        """Metric name -> tensor of shape `solution_shape` (a 0-d tensor for a single model). Asked once, right after
        fit (which may keep what it needs from the dataset), and saved with the fit; never asked of a restored model."""
        ...


@runtime_checkable
class TrainingScoresModel(Model, Protocol):
    """A model that reports scores of its own training (e.g. the paper's reconstruction: the mean training BCE
    over the last steps), recorded beside the metrics as the entry "training"."""

    def training_scores(self) -> dict[str, Any]:
        """Score name -> tensor of shape `solution_shape`, plus JSON-ready notes on how they were computed; asked once,
        right after fit, like exact_metrics."""
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
    """A disentanglement score of a fitted model on a ground-truth dataset.

    It is called under `torch.inference_mode()`, with a generator on the dataset's device seeded
    for this metric alone. It returns {score name: value} where a value is a float, or a tensor (or
    nested list) of shape `solution_shape` for a batched model, plus the entry "provenance": a
    JSON-ready dict of how the scores were produced (sampling protocol, sample counts, seed, mode).
    Any other non-numeric entry is kept in the record but not summarised.
    """

    name: str

    def __call__(self, model: Model, dataset: GroundTruthDataset, *,
                 generator: torch.Generator) -> dict[str, Any]:
        ...

