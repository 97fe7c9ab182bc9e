"""A model's solutions: the grid over its objective's axes and the seeds, flattened in C order (seed fastest), as the
record's nested lists are."""
from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import torch


class SolutionGrid:
    """Every (axis value..., seed) of a model, in C order over `axes` (an ordered {axis: values}, "seed" last)."""

    def __init__(self, axes: Mapping[str, Sequence]):
        self.axes = {name: list(values) for name, values in axes.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.axes.values())

    def __len__(self) -> int:
        return math.prod(self.shape)

    def cells(self) -> list[tuple]:
        """Each solution's axis values, in flat order."""
        return list(itertools.product(*self.axes.values()))

    def sub(self, names: Sequence[str]) -> SolutionGrid:
        """The grid over some of the axes (kept in this grid's order)."""
        return SolutionGrid({name: values for name, values in self.axes.items() if name in names})

    def project(self, cell: tuple, grid: SolutionGrid) -> tuple:
        """The cell of `grid` (a sub-grid) that `cell` of this grid lies in."""
        return tuple(value for name, value in zip(self.names, cell) if name in grid.axes)

    def label(self, cell: tuple, grid: SolutionGrid) -> list:
        """A cell of `grid` (a sub-grid) named in this grid's axes, None where `grid` has no such axis: the history
        labels of a first stage's solutions, which stand for every setting of the later axes."""
        values = dict(zip(grid.names, cell))
        return [values.get(name) for name in self.names]

    def values(self, cells: Sequence[tuple], dtype=torch.float32) -> dict[str, torch.Tensor]:
        """{axis: (len(cells),) tensor} of every axis but the seed, for the given cells."""
        return {name: torch.tensor([cell[index] for cell in cells], dtype=dtype)
                for index, name in enumerate(self.names) if name != "seed"}
