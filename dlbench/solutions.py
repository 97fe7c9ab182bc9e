"""Solution grids: the settings of every solution a batched model holds, flattened in C order.

A model with solution axes (β, λ, start) computes all of them as one tensor computation over a
flat batch; these helpers give each flat index its settings, so every plugin lays out the same grid
the same way (the last axis varies fastest, as the record's nested lists do).
"""
from __future__ import annotations

from typing import Sequence

import torch


def axis_grid(*axes: Sequence[float], repeat: int = 1, dtype: torch.dtype = torch.float64,
              device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """One flat tensor per axis with the value of that axis for every grid point, each point repeated `repeat` times
    (e.g. random starts of one cell): axis_grid([1, 4], [0, 2], repeat=3) gives β and λ of 12 solutions."""
    if not axes:
        raise ValueError("axis_grid needs at least one axis")
    mesh = torch.meshgrid(*(torch.as_tensor(list(values), dtype=dtype) for values in axes), indexing="ij")
    return tuple(values.reshape(-1).repeat_interleave(repeat).to(device) for values in mesh)
