"""The one dataset class behind every built-in name: a factor grid plus an image source.

Sampling is tensor arithmetic on the run's device: factor classes are drawn as grid indices and
unravelled, observations are a gather (stored images) or a batched render (procedural stand-ins).
Images stay uint8 until the batch is formed; `observation.float() / 255` is the image in [0, 1].
"""
from __future__ import annotations

import math
import sys
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import torch

from dlbench.config import check_binding
from dlbench.datasets.files import LocatedFiles
from dlbench.datasets.grid import FactorGrid, select_factors
from dlbench.errors import ConfigError, DataError

SOURCES = ("auto", "official", "procedural")
_RENDER_CHUNK = 256  # renderers are memory-bound: chunks whose intermediates stay in cache
_DEVICE_SHARE = 0.5  # keep a stored dataset on the GPU only if it takes under half the free memory


class StoredImages:
    """Images in a (N, H, W, C) uint8 array (a memory map of a file or cache).

    On a CUDA device the whole array is copied to the GPU when it fits; otherwise each batch is
    gathered from the memory map into pinned memory and copied asynchronously.
    """

    def __init__(self, array: np.ndarray, device: torch.device, keep_on_device: bool | None):
        self.observation_shape = (array.shape[3], array.shape[1], array.shape[2])
        self.device = device
        with warnings.catch_warnings():
            # A read-only memory map is never written through this tensor.
            warnings.filterwarnings("ignore", message=".*not writable.*")
            host = torch.from_numpy(array)
        if device.type == "cuda" and keep_on_device is None:
            free_bytes, _ = torch.cuda.mem_get_info(device)
            keep_on_device = array.nbytes < _DEVICE_SHARE * free_bytes
        self.on_device = device.type == "cpu" or bool(keep_on_device)
        if device.type != "cpu" and self.on_device:
            self.images = torch.empty(host.shape, dtype=torch.uint8, device=device)
            rows_per_copy = max(1, (256 << 20) // max(1, array[0].nbytes))
            for start in range(0, len(host), rows_per_copy):
                self.images[start:start + rows_per_copy].copy_(host[start:start + rows_per_copy])
        else:
            self.images = host

    def take(self, index: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        if self.on_device:
            batch = self.images.index_select(0, index.to(self.images.device))
        else:
            pinned = torch.empty((len(index), *self.images.shape[1:]), dtype=torch.uint8,
                                 pin_memory=True)
            torch.index_select(self.images, 0, index.cpu(), out=pinned)
            batch = pinned.to(self.device, non_blocking=True)
        return batch.permute(0, 3, 1, 2).contiguous()


class RenderedImages:
    """Images drawn on demand by `render(classes (n, K) int64 on device) -> (n, C, H, W) uint8`."""

    def __init__(self, render: Callable[[torch.Tensor], torch.Tensor],
                 observation_shape: tuple[int, ...]):
        self.render = render
        self.observation_shape = observation_shape

    def take(self, index: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        if len(classes) <= _RENDER_CHUNK:
            return self.render(classes)
        return torch.cat([self.render(part) for part in classes.split(_RENDER_CHUNK)])


class GridDataset:
    """A discrete ground-truth dataset (see dlbench.interfaces.DiscreteGroundTruthDataset).

    `factors` picks the exposed factors; a factor left out is held at its first class, so the
    dataset is the sub-grid at that class (dropping a size-1 factor such as dSprites' color loses
    nothing). `factor_sizes`, `factor_values` and `len()` describe the exposed grid.
    """

    def __init__(self, name: str, source: str, grid: FactorGrid, images, device: torch.device,
                 factors: Sequence[str] | None = None, details: dict[str, Any] | None = None):
        self.name = name
        self.source = source
        self.grid = grid
        self.images = images
        self.device = torch.device(device)
        self.exposed = select_factors(grid, factors)
        self.factor_names = tuple(grid.names[k] for k in self.exposed)
        self.factor_sizes = tuple(grid.sizes[k] for k in self.exposed)
        self.factor_values = tuple(grid.values[k].to(self.device) for k in self.exposed)
        self.observation_shape = tuple(images.observation_shape)
        self.exposed_grid = FactorGrid(self.factor_names, self.factor_sizes,
                                       tuple(grid.values[k] for k in self.exposed))
        self.details = details or {}

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def sample_factors(self, num: int, generator: torch.Generator) -> torch.Tensor:
        # A uniform grid index is uniform and independent per factor; unravel it.
        index = torch.randint(len(self), (num,), generator=generator, device=generator.device)
        return self.factors_from_indices(index)

    def factors_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.exposed_grid.unravel(indices.to(self.device))

    def observations_from_factors(self, factors: torch.Tensor) -> torch.Tensor:
        if factors.ndim != 2 or factors.shape[1] != len(self.exposed):
            raise ConfigError(f"factors of shape {tuple(factors.shape)}: expected (n, "
                              f"{len(self.exposed)}) classes of {list(self.factor_names)}")
        full = torch.zeros((len(factors), len(self.grid.sizes)), dtype=torch.int64,
                           device=self.device)
        full[:, list(self.exposed)] = factors.to(self.device, torch.int64)
        return self.images.take(self.grid.ravel(full), full)

    def sample(self, num: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        factors = self.sample_factors(num, generator)
        return factors, self.observations_from_factors(factors)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source,
                "factor_names": list(self.factor_names), "factor_sizes": list(self.factor_sizes),
                "factor_values": [v.tolist() for v in self.factor_values],
                "held_at_first_class": [n for n in self.grid.names if n not in self.factor_names],
                "observation_shape": list(self.observation_shape),
                "pixels": "uint8; observation / 255 is the image in [0, 1]",
                "num_observations": len(self), **self.details}


def choose_source(name: str, source: str, official_available: bool) -> str:
    """Resolve `auto` to the official file when present, else the stand-in, and say which."""
    check_binding(source in SOURCES, "dataset.source", source, " or ".join(map(repr, SOURCES)))
    if source != "auto":
        return source
    chosen = "official" if official_available else "procedural"
    reason = ("the official file was found" if official_available else
              "no official file in the data directory (set DLBENCH_DATA_DIR or "
              f"{name}.data_dir); scores are not comparable with published ones")
    print(f"dlbench: {name}: source auto -> {chosen} ({reason})", file=sys.stderr)
    return chosen


def make_dataset(name: str, source: str, device: torch.device | str, grid: FactorGrid, *,
                 located: LocatedFiles, load_official: Callable, render: Callable,
                 observation_shape: tuple[int, ...], factors: Sequence[str] | None,
                 keep_on_device: bool | None, stand_in: str) -> GridDataset:
    """Build `name` from the official file (`load_official(path) -> (array, details)`) or the
    renderer, as `source` says."""
    device = torch.device(device)
    chosen = choose_source(name, source, located.official_file is not None)
    if chosen == "official":
        if located.official_file is None:
            where = f"in the data directory {located.data_dir}" if located.data_dir else "found: no data " \
                "directory is set"
            raise DataError(f"{name}: source 'official' but no {' or '.join(located.official.names)} "
                            f"{where} (set DLBENCH_DATA_DIR, {name}.data_dir or {name}.path)")
        array, details = load_official(located.official_file)
        images = StoredImages(array, device, keep_on_device)
    else:
        images = RenderedImages(render, observation_shape)
        details = {"stand_in": stand_in,
                   "note": "procedural pixels: scores are not comparable with published ones"}
    return GridDataset(name, chosen, grid, images, device, factors, details)
