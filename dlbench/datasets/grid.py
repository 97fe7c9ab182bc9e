"""Factor grids: names, sizes and value grids, and the index <-> classes maps between them.

Image index = ravel_multi_index(classes, sizes) in C order (the last factor varies fastest), so
no label array is ever needed in memory: classes come from the index by integer arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from dlbench.errors import ConfigError


@dataclass(frozen=True)
class FactorGrid:
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    values: tuple[torch.Tensor, ...]  # float64, CPU, one 1-D tensor per factor

    def __post_init__(self):
        if not (len(self.names) == len(self.sizes) == len(self.values)):
            raise ValueError("names, sizes and values must have one entry per factor")
        if tuple(len(v) for v in self.values) != self.sizes:
            raise ValueError("each value grid must have its factor's size")

    @property
    def num_points(self) -> int:
        return math.prod(self.sizes)

    def strides(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """C-order strides: stride[k] = prod(sizes[k+1:])."""
        tail_products = [math.prod(self.sizes[k + 1:]) for k in range(len(self.sizes))]
        return torch.tensor(tail_products, dtype=torch.int64, device=device)

    def ravel(self, classes: torch.Tensor) -> torch.Tensor:
        """(n, K) int64 classes -> (n,) int64 image indices."""
        return (classes * self.strides(classes.device)).sum(dim=-1)

    def unravel(self, index: torch.Tensor) -> torch.Tensor:
        """(n,) int64 image indices -> (n, K) int64 classes."""
        sizes = torch.tensor(self.sizes, dtype=torch.int64, device=index.device)
        return torch.div(index.unsqueeze(-1), self.strides(index.device),
                         rounding_mode="floor") % sizes

    def snap(self, values: torch.Tensor) -> torch.Tensor:
        """(n, K) noisy factor values -> (n, K) classes of the nearest grid value per factor."""
        columns = [(values[:, k:k + 1] - grid.to(values).unsqueeze(0)).abs().argmin(dim=1)
                   for k, grid in enumerate(self.values)]
        return torch.stack(columns, dim=1)

    def leading_subgrid(self, sizes: Sequence[int]) -> FactorGrid:
        """The grid of the first sizes[k] classes of each factor (variant and fixture files)."""
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) != len(self.sizes) or any(not 1 <= s <= full
                                                for s, full in zip(sizes, self.sizes)):
            raise ConfigError(f"factor_sizes={list(sizes)} does not fit the grid "
                              f"{dict(zip(self.names, self.sizes))}: give {len(self.sizes)} "
                              "sizes, each between 1 and the factor's full size")
        return FactorGrid(self.names, sizes, tuple(v[:s] for v, s in zip(self.values, sizes)))


def class_grid(sizes: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """Value grids that are the class indices themselves (factors without physical values)."""
    return tuple(torch.arange(s, dtype=torch.float64) for s in sizes)


def select_factors(grid: FactorGrid, factors: Sequence[str] | None) -> tuple[int, ...]:
    """Positions of the exposed factors, in the grid's order; all of them when `factors` is None."""
    if factors is None:
        return tuple(range(len(grid.names)))
    if isinstance(factors, str):
        factors = [factors]
    unknown = [f for f in factors if f not in grid.names]
    if unknown or len(set(factors)) != len(factors) or not factors:
        raise ConfigError(f"factors={list(factors)} is not a non-empty selection of distinct "
                          f"names from {list(grid.names)}")
    return tuple(k for k, name in enumerate(grid.names) if name in factors)


def class_values(grid: FactorGrid, classes: torch.Tensor) -> torch.Tensor:
    """(n, K) classes -> (n, K) float64 factor values on the classes' device."""
    columns = [values.to(classes.device)[classes[:, k]] for k, values in enumerate(grid.values)]
    return torch.stack(columns, dim=1)
