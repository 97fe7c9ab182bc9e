"""Small files in the exact published formats, for tests and benchmarks (no download needed).

Each writer fills a leading sub-grid (`sizes`) in C order with the procedural stand-in's images,
so an official-format file and the stand-in must agree image for image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlbench.datasets import dsprites, mpi3d, shapes3d
from dlbench.datasets.files import file_digest
from dlbench.datasets.grid import FactorGrid, class_grid, class_values


def file_checks_for(path: Path) -> dict:
    """A `file_checks` override that vouches for a fixture file (its size and sha256)."""
    return {path.name: {"bytes": path.stat().st_size, "sha256": file_digest(path, "sha256")}}


def _grid_rows(grid: FactorGrid) -> torch.Tensor:
    return grid.unravel(torch.arange(grid.num_points))


def dsprites_arrays(sizes) -> dict[str, np.ndarray]:
    grid = dsprites.GRID.leading_subgrid(sizes)
    classes = _grid_rows(grid)
    values = class_values(grid, classes)
    images = (dsprites.render(values)[:, 0] // 255).numpy()
    metadata = np.empty((), dtype=object)  # the published file pickles a dict here
    metadata[()] = {"latents_sizes": np.array(grid.sizes), "latents_names": grid.names,
                    "latents_possible_values": {n: v.numpy() for n, v in
                                                zip(grid.names, grid.values)}}
    return {"imgs": images, "latents_values": values.numpy(),
            "latents_classes": classes.numpy(), "metadata": metadata}


def write_dsprites_npz(path: Path, sizes, **replace) -> Path:
    np.savez_compressed(path, **{**dsprites_arrays(sizes), **replace})
    return path


def write_dsprites_hdf5(path: Path, sizes) -> Path:
    import h5py

    arrays = dsprites_arrays(sizes)
    with h5py.File(path, "w") as handle:
        handle["imgs"] = arrays["imgs"]
        handle["latents/classes"] = arrays["latents_classes"]
        handle["latents/values"] = arrays["latents_values"]
    return path


def write_shapes3d_h5(path: Path, sizes, chunked: bool, **replace) -> Path:
    import h5py

    grid = shapes3d.GRID.leading_subgrid(sizes)
    classes = _grid_rows(grid)
    images = shapes3d.ProceduralShapes3D(grid, torch.device("cpu"))(classes)
    arrays = {"images": images.permute(0, 2, 3, 1).numpy(),
              "labels": class_values(grid, classes).numpy(), **replace}
    layout = {"chunks": True, "compression": "gzip"} if chunked else {}
    with h5py.File(path, "w") as handle:
        for key, array in arrays.items():
            handle.create_dataset(key, data=array, **(layout if array.ndim == 4 else {}))
    return path


def write_mpi3d_npz(path: Path, sizes, compressed: bool = False, **replace) -> Path:
    classes = _grid_rows(FactorGrid(mpi3d.NAMES, tuple(sizes), class_grid(sizes)))
    images = mpi3d.render(classes, tuple(sizes)).permute(0, 2, 3, 1).numpy()
    save = np.savez_compressed if compressed else np.savez
    save(path, **{"images": images, **replace})
    return path
