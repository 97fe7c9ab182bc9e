"""Small in-memory datasets and models for the metric tests, and brute-force numpy helpers."""
from __future__ import annotations

import numpy as np
import torch

FACTOR_SIZES = (3, 4, 5, 2)


def realistic_codes(factors: np.ndarray, rng: np.random.Generator, num_codes: int = 6, noise: float = 0.3,
                    mixing_seed: int = 7) -> np.ndarray:
    """Codes that look like a trained encoder's: a noisy linear mix of the normalised factors."""
    mixing = np.random.default_rng(mixing_seed).normal(size=(factors.shape[1], num_codes))
    return (factors / factors.max(0).clip(1)) @ mixing + noise * rng.normal(size=(len(factors), num_codes))


def draw_factors(num: int, rng: np.random.Generator, sizes=FACTOR_SIZES) -> np.ndarray:
    return np.stack([rng.integers(0, size, num) for size in sizes], 1)


class GridDataset:
    """A discrete factor grid whose observation of a factor vector is that vector (float)."""

    name = "grid"
    source = "synthetic"
    device = torch.device("cpu")

    def __init__(self, factor_sizes=FACTOR_SIZES):
        self.factor_sizes = tuple(factor_sizes)
        self.factor_names = tuple(f"factor_{i}" for i in range(len(factor_sizes)))
        self.factor_values = tuple(torch.arange(size, dtype=torch.float64) for size in factor_sizes)
        self.observation_shape = (len(factor_sizes),)

    def __len__(self):
        return int(np.prod(self.factor_sizes))

    def sample_factors(self, num, generator):
        return torch.stack([torch.randint(size, (num,), generator=generator) for size in self.factor_sizes], 1)

    def factors_from_indices(self, indices):
        strides = torch.tensor([int(np.prod(self.factor_sizes[k + 1:])) for k in range(len(self.factor_sizes))])
        return indices.unsqueeze(-1) // strides % torch.tensor(self.factor_sizes)

    def observations_from_factors(self, factors):
        return factors.to(torch.float64)

    def sample(self, num, generator):
        factors = self.sample_factors(num, generator)
        return factors, self.observations_from_factors(factors)

    def describe(self):
        return {"name": self.name, "factor_sizes": self.factor_sizes}


class ContinuousDataset:
    """Continuous Gaussian factors observed directly."""

    name = "continuous"
    source = "synthetic"
    device = torch.device("cpu")
    factor_names = ("a", "b", "c")
    observation_shape = (3,)

    def sample(self, num, generator):
        factors = torch.randn(num, 3, generator=generator, dtype=torch.float64)
        return factors, factors

    def describe(self):
        return {"name": self.name}


class LinearModel:
    """codes = observations @ mixing (+ a second solution scaled by 2 when batched)."""

    name = "linear"

    def __init__(self, mixing: np.ndarray, batched: bool = False):
        self.mixing = torch.as_tensor(mixing, dtype=torch.float64)
        self.batched = batched

    @property
    def solution_axes(self):
        return {"scale": [1, 2]} if self.batched else {}

    def representation(self, observations):
        codes = observations.to(torch.float64) @ self.mixing
        return torch.stack([codes, 2 * codes]) if self.batched else codes


def numpy_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """disentanglement_lib's `_histogram_discretize`, per code."""
    return np.stack([np.digitize(code, np.histogram(code, num_bins)[1][:-1]) for code in codes.T], 1)


def numpy_mutual_info(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """disentanglement_lib's `discrete_mutual_info`: one scikit-learn call per pair."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(b, a) for b in second.T] for a in first.T])
