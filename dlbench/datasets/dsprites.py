"""dSprites: 2-D sprites (square, ellipse, heart) on a 64x64 black frame.

Factors (slowest -> fastest): color 1, shape 3, scale 6, orientation 40, posX 32, posY 32;
737,280 images. Orientation is linspace(0, 2*pi, 40) with both endpoints, so classes 0 and 39
are the same rotation. The paper drops `color` (a single class): `PAPER_FACTORS`, the default.

Observations are (1, 64, 64) uint8 with values 0 and 255, so `observation.float() / 255` is the
binary image in {0, 1} (the published pixels are {0, 1}).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dlbench.datasets import files
from dlbench.datasets.base import make_dataset
from dlbench.datasets.grid import FactorGrid, class_values
from dlbench.errors import DataError
from dlbench.interfaces import OfficialFiles

NAME = "dsprites"
GRID = FactorGrid(
    names=("color", "shape", "scale", "orientation", "posX", "posY"),
    sizes=(1, 3, 6, 40, 32, 32),
    values=(torch.tensor([1.0], dtype=torch.float64),
            torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
            torch.linspace(0.5, 1.0, 6, dtype=torch.float64),
            torch.linspace(0.0, 2 * math.pi, 40, dtype=torch.float64),
            torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
            torch.linspace(0.0, 1.0, 32, dtype=torch.float64)))
PAPER_FACTORS = ("shape", "scale", "orientation", "posX", "posY")
NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
HDF5_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"
OFFICIAL_FILES = OfficialFiles(names=(NPZ_NAME, HDF5_NAME), checks={
    NPZ_NAME: files.FileCheck(md5="7da33b31b13a06f4b04a70402ce90c2e"),
    HDF5_NAME: files.FileCheck(
        bytes=28_024_106,
        sha256="729fa22e884c9c500e1f17415d580746b4c5894fbbb780a1319bbcfa39a745bb"),
})
IMAGE_SIZE = 64
ROWS_PER_BLOCK = 16384

# Stand-in geometry, in pixels. The half-size at scale 1 makes the mean pixel ~0.0425 (the
# original's): mean shape area (square 4, ellipse pi/2, heart 3.66 in unit coordinates) times
# mean scale^2 (0.592) times HALF_SIZE^2 = 0.0425 * 4096 lit pixels.
HALF_SIZE = 9.8
ELLIPSE_MINOR = 0.5  # minor/major axis ratio
HEART_CENTRE = 0.119  # shifts (x^2+y^2-1)^3 - x^2 y^3 <= 0 so its bounding box is centred
# A square's corner (sqrt 2 unit coordinates) at scale 1 stays inside the frame at any angle.
MARGIN = HALF_SIZE * math.sqrt(2) + 0.5


def render(values: torch.Tensor) -> torch.Tensor:
    """(n, 6) factor values -> (n, 1, 64, 64) uint8 in {0, 255}, rasterised on pixel centres."""
    device = values.device
    centres = torch.arange(IMAGE_SIZE, device=device, dtype=torch.float32) + 0.5
    shape, scale, angle = values[:, 1], values[:, 2], torch.remainder(values[:, 3], 2 * math.pi)
    # Angles reduced in float64 first, so 0 and 2*pi give bit-identical images.
    cos, sin = torch.cos(angle).float(), torch.sin(angle).float()
    span = IMAGE_SIZE - 2 * MARGIN
    centre_x = (MARGIN + values[:, 4] * span).float()
    centre_y = (MARGIN + values[:, 5] * span).float()
    dx = centres.view(1, 1, -1) - centre_x.view(-1, 1, 1)
    dy = centres.view(1, -1, 1) - centre_y.view(-1, 1, 1)
    size = (scale.float() * HALF_SIZE).view(-1, 1, 1)
    u = (cos.view(-1, 1, 1) * dx + sin.view(-1, 1, 1) * dy) / size
    v = (-sin.view(-1, 1, 1) * dx + cos.view(-1, 1, 1) * dy) / size
    square = torch.maximum(u.abs(), v.abs()) <= 1
    ellipse = u ** 2 + (v / ELLIPSE_MINOR) ** 2 <= 1
    heart_y = HEART_CENTRE - v  # image rows grow downwards; the heart's lobes point up
    heart = (u ** 2 + heart_y ** 2 - 1) ** 3 - u ** 2 * heart_y ** 3 <= 0
    shape = shape.view(-1, 1, 1)
    lit = torch.where(shape == 1, square, torch.where(shape == 2, ellipse, heart))
    return (lit.to(torch.uint8) * 255).unsqueeze(1)


def _check_classes(path: Path, classes: np.ndarray, grid: FactorGrid) -> None:
    expected = grid.unravel(torch.arange(grid.num_points)).numpy()
    if not np.array_equal(classes, expected):
        row = int(np.argmax((classes != expected).any(axis=1)))
        raise DataError(f"{path}: latents_classes row {row} is {classes[row].tolist()}, expected "
                        f"{expected[row].tolist()} for the grid {list(grid.sizes)} in C order")


def _write_binary_block(path: Path, out: np.ndarray, start: int, block: np.ndarray) -> None:
    if block.size and block.max() > 1:
        raise DataError(f"{path}: imgs hold values above 1 near row {start}; expected {{0, 1}}")
    out[start:start + len(block), :, :, 0] = block * np.uint8(255)


def _npz_filler(path: Path, grid: FactorGrid):
    images = files.npz_member(path, "imgs")
    labels = files.npz_member(path, "latents_classes")
    files.require_array(f"{path}[imgs]", images.shape, images.dtype,
                        (grid.num_points, IMAGE_SIZE, IMAGE_SIZE), "uint8")
    files.require_array(f"{path}[latents_classes]", labels.shape, labels.dtype,
                        (grid.num_points, 6), "int64")

    def fill(out: np.ndarray) -> None:
        classes = np.concatenate([b for _, b in files.iter_npz_rows(labels, grid.num_points)])
        _check_classes(path, classes, grid)
        for start, block in files.iter_npz_rows(images, ROWS_PER_BLOCK):
            _write_binary_block(path, out, start, block)
    return fill


def _hdf5_filler(path: Path, grid: FactorGrid):
    with files.open_hdf5(path) as handle:
        for key, shape, dtype in (("imgs", (grid.num_points, IMAGE_SIZE, IMAGE_SIZE), "uint8"),
                                  ("latents/classes", (grid.num_points, 6), "int64")):
            dataset = files.hdf5_dataset(handle, key)
            files.require_array(f"{path}[{key}]", dataset.shape, dataset.dtype, shape, dtype)

    def fill(out: np.ndarray) -> None:
        with files.open_hdf5(path) as handle:
            _check_classes(path, handle["latents/classes"][()], grid)
            images = handle["imgs"]
            for start in range(0, grid.num_points, ROWS_PER_BLOCK):
                _write_binary_block(path, out, start, images[start:start + ROWS_PER_BLOCK])
    return fill


def load_official(path: Path, grid: FactorGrid, file_checks: dict, cache_dir: Path):
    """Verify the npz or HDF5 file and return (memory-mapped (N, 64, 64, 1) cache, details)."""
    filler = _hdf5_filler if path.suffix in (".hdf5", ".h5") else _npz_filler
    fill = filler(path, grid)
    return files.cached_official(NAME, path, file_checks.get(path.name), cache_dir,
                                 (grid.num_points, IMAGE_SIZE, IMAGE_SIZE, 1), fill)


def dsprites(source="auto", device=torch.device("cpu"), *, data_dir=None, cache_dir=None,
             path=None, factors=PAPER_FACTORS, factor_sizes=None, file_checks=None,
             keep_on_device=None):
    """dSprites (official npz/HDF5 or procedural stand-in); default factors drop `color`.

    Args:
        data_dir: folder holding the published file (default $DLBENCH_DATA_DIR).
        cache_dir: where the decompressed cache goes (default $DLBENCH_CACHE_DIR or ~/.cache/dlbench).
        path: the published file itself.
        factors: exposed factor names (default the paper's five, without color; None for all six).
        factor_sizes: a leading sub-grid (variant or fixture files).
        file_checks: {file name: {bytes, md5 | sha256}} overriding the published table.
        keep_on_device: keep the images on the GPU (default: when they fit).
    """
    grid = GRID if factor_sizes is None else GRID.leading_subgrid(factor_sizes)
    located = files.locate(OFFICIAL_FILES, data_dir=data_dir, cache_dir=cache_dir, path=path,
                           file_checks=file_checks)

    def render_classes(classes: torch.Tensor) -> torch.Tensor:
        return render(class_values(grid, classes))

    return make_dataset(
        NAME, source, device, grid, located=located,
        load_official=lambda file: load_official(file, grid, located.checks, located.cache_dir),
        render=render_classes, observation_shape=(1, IMAGE_SIZE, IMAGE_SIZE),
        factors=factors, keep_on_device=keep_on_device,
        stand_in="procedural dSprites: square, ellipse, heart rasterised on pixel centres")


dsprites.official_files = OFFICIAL_FILES
