"""MPI3D (real, toy, realistic): a robot arm holding an object, over a 40x40 grid of its joints.

Factors: object_color 6 (white, green, red, blue, brown, olive), object_shape 6 (cone, cube,
cylinder, hexagonal prism, pyramid, sphere), object_size 2, camera_height 3, background_color 3
(purple, sea green, salmon), horizontal_axis 40, vertical_axis 40: 1,036,800 images. Factor values
are the class indices. Older files (and mpi3d_complex) hold 460,800 images with sizes
(4, 4, 2, 3, 3, 40, 40); the sizes are inferred from the image count, or set with factor_sizes.

The published npz stores `images` (N, 64, 64, 3) uint8 uncompressed; it is memory-mapped in place
(never np.load-ed). Observations are (3, 64, 64) uint8 RGB; `observation.float() / 255` is the
image in [0, 1]. No procedural equivalent of the photographs exists: the stand-in is an
MPI3D-toy-like drawing, always labelled as such.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dlbench.datasets import files
from dlbench.datasets.base import make_dataset
from dlbench.datasets.grid import FactorGrid, class_grid
from dlbench.datasets.render import colourise
from dlbench.errors import DataError
from dlbench.interfaces import OfficialFiles

NAMES = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
         "horizontal_axis", "vertical_axis")
SIZES_BY_COUNT = {1_036_800: (6, 6, 2, 3, 3, 40, 40), 460_800: (4, 4, 2, 3, 3, 40, 40)}
FULL_SIZES = SIZES_BY_COUNT[1_036_800]
VARIANTS = ("real", "toy", "realistic")
IMAGE_SIZE = 64

# Stand-in scene, in pixels (rows grow downwards). Colours are RGB in [0, 1].
OBJECT_COLOURS = ((0.9, 0.9, 0.9), (0.2, 0.6, 0.25), (0.75, 0.15, 0.15), (0.15, 0.25, 0.75),
                  (0.5, 0.3, 0.15), (0.5, 0.5, 0.15))
BACKGROUND_COLOURS = ((0.45, 0.25, 0.55), (0.18, 0.5, 0.34), (0.85, 0.45, 0.4))
SCENE_GREY, ARM_GREY = (0.15, 0.15, 0.15), (0.6, 0.6, 0.6)
BACKGROUND, BAND, ARM, OBJECT = 0, 1, 2, 3
ARM_BASE = (32.0, 4.0)
UPPER_LINK, LOWER_LINK, ARM_RADIUS = 20.0, 12.0, 3.5
HORIZONTAL_RANGE_DEG, VERTICAL_RANGE_DEG = 40.0, 45.0
OBJECT_RADII = (5.0, 8.0)  # small, large
CAMERA_SHIFT, CAMERA_SQUASH = 5.0, 0.1  # per camera-height step: rows moved, rows squeezed
BAND_TOP = 50.0


def _inside_object(x, y, shape, radius):
    """Silhouettes in OBJECT names' order: cone, cube, cylinder, hexagonal prism, pyramid,
    sphere; (x, y) relative to the object's centre (y downwards), all by linear inequalities."""
    def triangle(circumradius, narrowing):  # apex up, base at circumradius / 2 below the centre
        return (y <= circumradius / 2) & (x.abs() * math.sqrt(3) * narrowing <= y + circumradius)

    hexagon_apothem = radius * math.sqrt(3) / 2
    slanted = math.sqrt(3) / 2 * y
    silhouettes = torch.stack([
        triangle(radius, 1.8),
        torch.maximum(x.abs(), y.abs()) <= 0.85 * radius,
        torch.maximum(x.abs() / (0.7 * radius), y.abs() / radius) <= 1,
        (x.abs() <= hexagon_apothem) & ((x / 2 + slanted).abs() <= hexagon_apothem)
        & ((x / 2 - slanted).abs() <= hexagon_apothem),
        triangle(1.2 * radius, 1.0),
        x ** 2 + y ** 2 <= radius ** 2,
    ])
    return silhouettes.gather(0, shape.view(1, -1, 1, 1).expand(1, *x.shape)).squeeze(0)


def _near_segment(x, y, start_x, start_y, end_x, end_y, radius):
    along_x, along_y = end_x - start_x, end_y - start_y
    t = (((x - start_x) * along_x + (y - start_y) * along_y)
         / (along_x ** 2 + along_y ** 2)).clamp(0, 1)
    return (x - start_x - t * along_x) ** 2 + (y - start_y - t * along_y) ** 2 <= radius ** 2


def render(classes: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """(n, 7) classes -> (n, 3, 64, 64) uint8: an arm with two joints holding an object."""
    device = classes.device
    col = lambda k: classes[:, k].view(-1, 1, 1)  # noqa: E731 - a column as (n, 1, 1)
    fraction = lambda k: (col(k).float() / max(sizes[k] - 1, 1))  # noqa: E731
    pixel = torch.arange(IMAGE_SIZE, device=device, dtype=torch.float32) + 0.5
    height_step = col(3).float() - 1
    x = pixel.view(1, 1, -1).expand(len(classes), IMAGE_SIZE, -1)
    # The camera height moves the scene and foreshortens it vertically.
    y = (pixel.view(1, -1, 1) - IMAGE_SIZE / 2 + CAMERA_SHIFT * height_step) \
        / (1 - CAMERA_SQUASH * height_step) + IMAGE_SIZE / 2
    y = y.expand(len(classes), -1, IMAGE_SIZE)
    upper = torch.deg2rad((2 * fraction(5) - 1) * HORIZONTAL_RANGE_DEG)
    lower = upper + torch.deg2rad((2 * fraction(6) - 1) * VERTICAL_RANGE_DEG)
    elbow_x = ARM_BASE[0] + UPPER_LINK * torch.sin(upper)
    elbow_y = ARM_BASE[1] + UPPER_LINK * torch.cos(upper)
    hand_x = elbow_x + LOWER_LINK * torch.sin(lower)
    hand_y = elbow_y + LOWER_LINK * torch.cos(lower)
    radius = torch.tensor(OBJECT_RADII, device=device)[col(2)]
    arm = (_near_segment(x, y, ARM_BASE[0], ARM_BASE[1], elbow_x, elbow_y, ARM_RADIUS)
           | _near_segment(x, y, elbow_x, elbow_y, hand_x, hand_y, ARM_RADIUS))
    held = _inside_object(x - hand_x, y - hand_y - radius, classes[:, 1], radius)
    labels = torch.where(held, OBJECT, torch.where(arm, ARM, torch.where(
        y >= BAND_TOP, BAND, BACKGROUND)))
    # Light from above: surfaces darken downwards; the scene itself is flat.
    shade = torch.where(labels >= ARM, 1.0 - 0.3 * ((y - hand_y).clamp(-8, 8) + 8) / 16, 1.0)
    colours = torch.stack([
        torch.tensor(SCENE_GREY, device=device).expand(len(classes), 3),
        torch.tensor(BACKGROUND_COLOURS, device=device)[classes[:, 4]],
        torch.tensor(ARM_GREY, device=device).expand(len(classes), 3),
        torch.tensor(OBJECT_COLOURS, device=device)[classes[:, 0]]], dim=1)
    return colourise(labels, shade, colours)


def load_official(path: Path, factor_sizes, file_checks: dict, cache_dir: Path):
    """Memory-map the npz's stored `images` member in place; return (array, details, grid)."""
    member = files.npz_member(path, "images")
    if member.compressed:
        raise DataError(f"{path}: 'images' is stored compressed, which cannot be memory-mapped; "
                        "re-save it uncompressed (numpy.savez, not savez_compressed, or "
                        "`zip -0`) and point the data directory at that file")
    files.require_array(f"{path}[images]", member.shape, member.dtype,
                        (None, IMAGE_SIZE, IMAGE_SIZE, 3), "uint8")
    count = member.shape[0]
    sizes = tuple(factor_sizes) if factor_sizes is not None else SIZES_BY_COUNT.get(count)
    if sizes is None or math.prod(sizes) != count:
        raise DataError(f"{path}: {count} images do not match factor sizes "
                        f"{list(sizes) if sizes else None}; known counts are "
                        f"{ {n: list(s) for n, s in SIZES_BY_COUNT.items()} }, or set "
                        "factor_sizes to 7 sizes whose product is the image count")
    stamp = files.verify_source(path, file_checks.get(path.name), strict=False,
                                cache_dir=cache_dir)
    images = np.memmap(path, dtype=np.uint8, mode="r", offset=member.data_offset,
                       shape=member.shape)
    return images, files.stamp_details(stamp), sizes


def mpi3d_factory(variant: str):
    file_name = f"mpi3d_{variant}.npz"
    name = f"mpi3d_{variant}"
    # Published checksums changed upstream in 2025, so none is pinned (file_checks can supply one) and a
    # mismatch only warns.
    official_files = OfficialFiles(names=(file_name,), strict=False)

    def factory(source="auto", device=torch.device("cpu"), *, data_dir=None, cache_dir=None,
                path=None, factors=None, factor_sizes=None, file_checks=None,
                keep_on_device=None):
        located = files.locate(official_files, data_dir=data_dir, cache_dir=cache_dir, path=path,
                               file_checks=file_checks)
        # The official grid depends on the file's image count, so it is read before building.
        opened = None
        if located.official_file is not None and source != "procedural":
            opened = load_official(located.official_file, factor_sizes, located.checks, located.cache_dir)
        sizes = opened[2] if opened else tuple(factor_sizes or FULL_SIZES)
        grid = FactorGrid(NAMES, sizes, class_grid(sizes))
        return make_dataset(
            name, source, device, grid, located=located,
            load_official=lambda file: opened[:2],
            render=lambda classes: render(classes, sizes),
            observation_shape=(3, IMAGE_SIZE, IMAGE_SIZE), factors=factors,
            keep_on_device=keep_on_device,
            stand_in=f"procedural MPI3D-toy-like arm and object drawing, a stand-in of {name}")

    factory.__name__ = name
    factory.__doc__ = (
        f"MPI3D-{variant} (official {file_name}, memory-mapped; or a toy-like stand-in).\n\n"
        "Args:\n"
        f"    data_dir: folder holding {file_name} (default $DLBENCH_DATA_DIR).\n"
        "    cache_dir: where the verification stamp goes.\n"
        "    path: the published file itself.\n"
        "    factors: exposed factor names (default all seven).\n"
        "    factor_sizes: override the sizes inferred from the image count.\n"
        "    file_checks: {file name: {bytes, md5 | sha256}} (a mismatch warns).\n"
        "    keep_on_device: keep the images on the GPU (default: when they fit).\n")
    factory.official_files = official_files
    return factory


FACTORIES = {f"mpi3d_{variant}": mpi3d_factory(variant) for variant in VARIANTS}
