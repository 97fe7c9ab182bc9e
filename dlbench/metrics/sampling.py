"""Drawing codes from a model and a dataset under a named protocol.

- "paper": distinct images drawn uniformly without replacement from the dataset's index grid with
  a seeded generator; the first num_train are the train split, the next num_test the test split
  (the paper's 15,000 = 10,000 + 5,000). Needs a DiscreteGroundTruthDataset.
- "dlib": disentanglement_lib's sampling, factors drawn uniformly per factor by `dataset.sample`,
  the train and test splits drawn one after the other. Works for continuous datasets too.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable

import torch

from dlbench.errors import ConfigError, DataError
from dlbench.interfaces import DiscreteGroundTruthDataset, GroundTruthDataset, Model
from dlbench.metrics.base import (
    check_choice,
    check_count,
    check_metric_seed,
    constant_factors,
    json_scores,
    metric_generator,
    provenance,
    require_sample_memory,
)
from dlbench.metrics.discretize import DEFAULT_NUM_BINS

PROTOCOLS = ("paper", "dlib")
# Observations go through the model this many at a time, so memory does not scale with the sample.
ENCODE_BATCH_SIZE = 256

Encoder = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Split:
    codes: torch.Tensor  # (*solution_shape, num, d)
    factors: torch.Tensor  # (num, K)


def check_protocol(binding: str, protocol: str, supported: tuple[str, ...] = PROTOCOLS) -> str:
    return check_choice(binding, protocol, supported)


PAPER_ALTERNATIVE = "use protocol 'dlib' (sampling via dataset.sample) instead"
SUPERVISED_ALTERNATIVE = "score it with mig, i_m, sap_score or unsupervised instead"


def require_discrete_dataset(dataset: GroundTruthDataset, why: str, alternative: str) -> DiscreteGroundTruthDataset:
    if not isinstance(dataset, DiscreteGroundTruthDataset):
        raise ConfigError(f"{why} needs a dataset with a discrete factor grid, and {dataset.name!r} has "
                          f"continuous factors; {alternative}")
    return dataset


def encode_factors(encoder: Encoder, dataset: DiscreteGroundTruthDataset, factors: torch.Tensor) -> torch.Tensor:
    """Codes (*solution_shape, num, d) of the observations of factors (num, K)."""
    return torch.cat([encoder(dataset.observations_from_factors(chunk))
                      for chunk in factors.split(ENCODE_BATCH_SIZE)], -2)


def sample_and_encode(encoder: Encoder, dataset: GroundTruthDataset, num: int,
                      generator: torch.Generator) -> Split:
    """`num` fresh samples of `dataset.sample` and their codes."""
    full_batches, rest = divmod(num, ENCODE_BATCH_SIZE)
    batch_sizes = [ENCODE_BATCH_SIZE] * full_batches + ([rest] if rest else [])
    factors, codes = zip(*[(factors, encoder(observations))
                           for factors, observations in (dataset.sample(size, generator) for size in batch_sizes)])
    return Split(torch.cat(codes, -2), torch.cat(factors))


def draw_splits(model: Model, dataset: GroundTruthDataset, *, protocol: str, sizes: tuple[int, ...],
                generator: torch.Generator, encoder: Encoder | None = None) -> list[Split]:
    """One Split per requested size (train, then test if asked) under the protocol."""
    encoder = encoder or model.representation
    if protocol == "dlib":
        return [sample_and_encode(encoder, dataset, size, generator) for size in sizes]
    grid = require_discrete_dataset(dataset, "protocol 'paper'", PAPER_ALTERNATIVE)
    total = sum(sizes)
    if total > len(grid):
        raise DataError(f"protocol 'paper' draws {total} distinct images but {dataset.name!r} has only "
                        f"{len(grid)}; lower num_train / num_test or use protocol 'dlib'")
    indices = torch.randperm(len(grid), generator=generator, device=generator.device)[:total]
    factors = grid.factors_from_indices(indices)
    codes = encode_factors(encoder, grid, factors)
    bounds = torch.tensor((0, *sizes)).cumsum(0).tolist()
    return [Split(codes[..., start:stop, :], factors[start:stop]) for start, stop in zip(bounds, bounds[1:])]


class SampledMetric(abc.ABC):
    """A metric scored on a train split (and a test split when num_test is set) drawn under a
    protocol; subclasses define `name` and `score`.

    Args:
        protocol: how codes are sampled: "paper" (distinct images of the grid) or "dlib" (factors drawn per factor).
        num_train: number of samples in the train split.
        num_test: number of samples in the test split.
        num_bins: equal-width histogram bins per code for discrete mutual information.
        mode: "reference" (scikit-learn's estimator) or "fast" (the same objective solved in torch).
        random_seed: the metric's own sampling seed (default: the run's evaluation.random_seed).
    """

    name: str

    def __init__(self, *, protocol: str, num_train: int, num_test: int | None, random_seed: int | None):
        self.protocol = check_protocol(f"{self.name}.protocol", protocol)
        self.num_train = check_count(f"{self.name}.num_train", num_train, minimum=2)
        self.num_test = None if num_test is None else check_count(f"{self.name}.num_test", num_test)
        self.random_seed = check_metric_seed(f"{self.name}.random_seed", random_seed)

    def encoder(self, model: Model) -> Encoder:
        return model.representation

    @abc.abstractmethod
    def score(self, train: Split, test: Split | None, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(scores, provenance details) of one train / test draw; `seed` seeds any estimator."""

    def __call__(self, model: Model, dataset: GroundTruthDataset, *,
                 generator: torch.Generator) -> dict[str, Any]:
        generator, seed = metric_generator(self.random_seed, generator, dataset.device)
        sizes = (self.num_train,) if self.num_test is None else (self.num_train, self.num_test)
        require_sample_memory(model, dataset, sum(sizes), self.name)
        splits = draw_splits(model, dataset, protocol=self.protocol, sizes=sizes,
                             generator=generator, encoder=self.encoder(model))
        scores, details = self.score(splits[0], splits[1] if len(splits) > 1 else None, seed)
        sample_counts = {"num_train": self.num_train} | ({} if self.num_test is None else {"num_test": self.num_test})
        return {**json_scores(scores),
                "provenance": provenance(metric=self.name, protocol=self.protocol, seed=seed,
                                         **sample_counts, **details)}


class BinnedMetric(SampledMetric):
    """A metric of histogram-discretised codes on one train split; `num_bins` per code."""

    def __init__(self, protocol: str = "paper", num_train: int = 10000,
                 num_bins: int = DEFAULT_NUM_BINS, random_seed: int | None = None):
        super().__init__(protocol=protocol, num_train=num_train, num_test=None,
                         random_seed=random_seed)
        self.num_bins = check_count(f"{self.name}.num_bins", num_bins, minimum=2)


def factor_details(factors: torch.Tensor, num_bins: int | None = None) -> dict[str, Any]:
    """Provenance of how factors entered a score: classes or discretised values, skipped factors."""
    details = {"skipped_constant_factors": constant_factors(factors)}
    if num_bins is not None:
        details["factor_discretisation"] = (f"continuous factors, {num_bins} equal-width histogram bins"
                                            if factors.is_floating_point() else "class indices")
    return details
