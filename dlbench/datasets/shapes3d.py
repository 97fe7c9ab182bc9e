"""Shapes3D (3dshapes): an object on a floor in front of walls, the camera orbiting the object.

Factors: floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4, orientation 15; 480,000
images. Hues 0.0..0.9; scale linspace(0.75, 1.25, 8); shape 0..3 = cube, cylinder, sphere,
capsule; orientation linspace(-30, 30, 15) degrees of camera azimuth.

Observations are (3, 64, 64) uint8 RGB; `observation.float() / 255` is the image in [0, 1].
The published labels are factor values with float noise; classes come from the row index, and the
labels are checked to snap to those classes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dlbench.datasets import files
from dlbench.datasets.base import make_dataset
from dlbench.datasets.grid import FactorGrid
from dlbench.datasets.render import hsv_to_rgb
from dlbench.errors import DataError
from dlbench.interfaces import OfficialFiles

NAME = "shapes3d"
HUES = torch.linspace(0.0, 0.9, 10, dtype=torch.float64)
GRID = FactorGrid(
    names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
    sizes=(10, 10, 10, 8, 4, 15),
    values=(HUES, HUES, HUES, torch.linspace(0.75, 1.25, 8, dtype=torch.float64),
            torch.arange(4, dtype=torch.float64),
            torch.linspace(-30.0, 30.0, 15, dtype=torch.float64)))
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
FILE_NAME = "3dshapes.h5"
OFFICIAL_FILES = OfficialFiles(names=(FILE_NAME,), checks={FILE_NAME: files.FileCheck(
    bytes=267_573_662,
    sha256="0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785")})
IMAGE_SIZE = 64
ROWS_PER_BLOCK = 10000

# Stand-in scene (world units, y up): floor y = 0, walls at z = -ROOM and x = +-ROOM; the camera
# orbits the object at the origin. Saturation and shading put the mean pixel near the original's.
ROOM = 3.5
CAMERA_DISTANCE, CAMERA_HEIGHT, CAMERA_TARGET_HEIGHT = 5.5, 2.2, 0.6
FIELD_OF_VIEW_DEG = 40.0
OBJECT_HALF_SIZE = 0.8  # at scale 1
LIGHT = (-0.4, 1.0, 0.7)
AMBIENT = 0.45
SATURATION = 0.75
MARCH_STEPS = 40
HIT_TOLERANCE = 1e-3
FLOOR, WALL, OBJECT = 0, 1, 2


def _box(x, y, z, half):
    q = torch.stack([x.abs(), y.abs(), z.abs()], -1) - half.unsqueeze(-1)
    return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)


def _cylinder(x, y, z, half):  # vertical axis
    q = torch.stack([torch.sqrt(x ** 2 + z ** 2) - half, y.abs() - half], -1)
    return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)


def _sphere(x, y, z, half):
    return torch.sqrt(x ** 2 + y ** 2 + z ** 2) - half


def _capsule(x, y, z, half):  # lying along x, radius 0.6 half, resting on the floor
    radius = 0.6 * half
    along = torch.maximum(torch.minimum(x, 0.9 * half), -0.9 * half)
    return torch.sqrt((x - along) ** 2 + (y + half - radius) ** 2 + z ** 2) - radius


OBJECT_DISTANCES = (_box, _cylinder, _sphere, _capsule)  # in SHAPE_NAMES order
BOUND = 2.0  # every object lies within BOUND half-sizes of its centre


def _object_distance(points: torch.Tensor, shape: int, half: torch.Tensor) -> torch.Tensor:
    """Signed distance from points (M, 3) to objects of one shape resting on the floor."""
    x, y, z = points.unbind(-1)
    return OBJECT_DISTANCES[shape](x, y - half, z, half)  # the centre is one half-size up


def _camera_rays(azimuth_deg: torch.Tensor):
    """Origins (G, 1, 3) and unit directions (G, P, 3) through the pixel centres."""
    azimuth = torch.deg2rad(azimuth_deg.float())
    origin = torch.stack([CAMERA_DISTANCE * torch.sin(azimuth),
                          torch.full_like(azimuth, CAMERA_HEIGHT),
                          CAMERA_DISTANCE * torch.cos(azimuth)], -1)
    target = torch.tensor([0.0, CAMERA_TARGET_HEIGHT, 0.0], device=origin.device)
    forward = torch.nn.functional.normalize(target - origin, dim=-1)
    world_up = torch.tensor([0.0, 1.0, 0.0], device=origin.device).expand_as(forward)
    right = torch.nn.functional.normalize(torch.cross(forward, world_up, dim=-1), dim=-1)
    up = torch.cross(right, forward, dim=-1)
    half_width = math.tan(math.radians(FIELD_OF_VIEW_DEG) / 2)
    ticks = ((torch.arange(IMAGE_SIZE, device=origin.device) + 0.5) / IMAGE_SIZE * 2 - 1) \
        * half_width
    across = ticks.view(1, -1).expand(IMAGE_SIZE, -1).reshape(1, -1, 1)
    down = ticks.view(-1, 1).expand(-1, IMAGE_SIZE).reshape(1, -1, 1)
    directions = forward.unsqueeze(1) + across * right.unsqueeze(1) - down * up.unsqueeze(1)
    return origin.unsqueeze(1), torch.nn.functional.normalize(directions, dim=-1)


def render_geometries(scale: torch.Tensor, shape: torch.Tensor, azimuth_deg: torch.Tensor):
    """Label maps (G, 64, 64) int64 (floor, wall, object) and shade maps (G, 64, 64) in [0, 1]
    for G geometries, ray-cast: planes analytically, the object by sphere tracing its SDF."""
    origin, direction = _camera_rays(azimuth_deg)
    far = torch.full(direction.shape[:2], float("inf"), device=origin.device)
    plane_hits = []  # (distance, normal) for the floor and the three walls
    for axis, position, normal in ((1, 0.0, (0, 1, 0)), (2, -ROOM, (0, 0, 1)),
                                   (0, -ROOM, (1, 0, 0)), (0, ROOM, (-1, 0, 0))):
        distance = (position - origin[..., axis]) / direction[..., axis]
        plane_hits.append((torch.where(distance > 0, distance, far),
                           torch.tensor(normal, dtype=torch.float32, device=origin.device)))
    room_distance, nearest_plane = torch.stack([d for d, _ in plane_hits]).min(dim=0)
    room_normals = torch.stack([n for _, n in plane_hits])[nearest_plane]

    # Only rays through an object's bounding sphere are traced, one shape at a time.
    half = (scale.float() * OBJECT_HALF_SIZE).to(origin.device).view(-1, 1)
    centre = torch.zeros_like(origin)
    centre[..., 1] = half
    to_origin = origin - centre
    along_ray = (direction * to_origin).sum(-1)
    discriminant = along_ray ** 2 - ((to_origin ** 2).sum(-1) - (BOUND * half) ** 2)
    candidate = (discriminant > 0) & (-along_ray - discriminant.clamp(min=0).sqrt()
                                      < room_distance)
    normals = room_normals.clone()
    on_object = torch.zeros_like(candidate)
    for shape_class in range(len(OBJECT_DISTANCES)):
        geometry, pixel = (candidate & (shape == shape_class).view(-1, 1).to(origin.device)
                           ).nonzero(as_tuple=True)
        ray_origin, ray = origin[geometry, 0], direction[geometry, pixel]
        ray_half, limit = half[geometry, 0], room_distance[geometry, pixel]
        travelled = (-along_ray[geometry, pixel]
                     - discriminant[geometry, pixel].sqrt()).clamp(min=0)
        for _ in range(MARCH_STEPS):
            step = _object_distance(ray_origin + travelled.unsqueeze(-1) * ray, shape_class,
                                    ray_half)
            travelled = torch.minimum(travelled + step, limit)
        point = ray_origin + travelled.unsqueeze(-1) * ray
        hit = (_object_distance(point, shape_class, ray_half) < HIT_TOLERANCE) \
            & (travelled < limit)
        gradient = torch.stack([
            _object_distance(point + offset, shape_class, ray_half)
            - _object_distance(point - offset, shape_class, ray_half)
            for offset in torch.eye(3, device=origin.device) * HIT_TOLERANCE], -1)
        on_object[geometry[hit], pixel[hit]] = True
        normals[geometry[hit], pixel[hit]] = torch.nn.functional.normalize(gradient[hit], dim=-1)
    light = torch.nn.functional.normalize(torch.tensor(LIGHT, device=origin.device), dim=0)
    lambert = (normals * light).sum(-1).clamp(min=0)
    shade = AMBIENT + (1 - AMBIENT) * lambert
    labels = torch.where(on_object, OBJECT, torch.where(nearest_plane == 0, FLOOR, WALL))
    square = (len(scale), IMAGE_SIZE, IMAGE_SIZE)
    return labels.view(square), shade.view(square)


SHADE_LEVELS = 256


class ProceduralShapes3D:
    """Renders each (scale, shape, orientation) geometry once, then colours by one gather.

    Each geometry pixel is coded as label * 256 + shade level; a table holds, for every hue
    triple, the RGB of every (label, shade level). An image is table[triple offset + code].
    """

    def __init__(self, grid: FactorGrid, device: torch.device):
        self.device = device
        self.hue_grid = FactorGrid(grid.names[:3], grid.sizes[:3], grid.values[:3])
        self.geometry_grid = FactorGrid(grid.names[3:], grid.sizes[3:], grid.values[3:])
        self._codes = None
        self._table = None

    def render_geometries_once(self):
        classes = self.geometry_grid.unravel(torch.arange(self.geometry_grid.num_points))
        scale, shape, azimuth = (values[classes[:, k]]
                                 for k, values in enumerate(self.geometry_grid.values))
        labels, shade = render_geometries(scale.to(self.device), shape.to(self.device),
                                          azimuth.to(self.device))
        levels = (shade * (SHADE_LEVELS - 1) + 0.5).long()
        self._codes = (labels * SHADE_LEVELS + levels).view(len(labels), -1).int()
        triples = self.hue_grid.unravel(torch.arange(self.hue_grid.num_points))
        rgb = torch.stack([hsv_to_rgb(values[triples[:, k]].float(), SATURATION, 1.0)
                           for k, values in enumerate(self.hue_grid.values)], dim=1)
        ramp = torch.arange(SHADE_LEVELS, dtype=torch.float32) / (SHADE_LEVELS - 1)
        # (triple, label, level, channel) -> (channel, triple * label * level)
        table = rgb.unsqueeze(2) * ramp.view(1, 1, -1, 1) * 255 + 0.5
        self._table = table.to(torch.uint8).permute(3, 0, 1, 2).reshape(3, -1).to(self.device)

    def __call__(self, classes: torch.Tensor) -> torch.Tensor:
        if self._codes is None:  # the first batch renders every geometry once
            self.render_geometries_once()
        # int32 indices halve the memory traffic of the gather (index_select accepts them).
        index = self._codes.index_select(0, self.geometry_grid.ravel(classes[:, 3:]))
        index += (self.hue_grid.ravel(classes[:, :3]) * (3 * SHADE_LEVELS)).int().view(-1, 1)
        flat = index.view(-1)
        image_shape = (len(classes), IMAGE_SIZE, IMAGE_SIZE)
        return torch.stack([channel.index_select(0, flat).view(image_shape)
                            for channel in self._table], dim=1)


def _check_labels(path: Path, labels: np.ndarray, grid: FactorGrid) -> None:
    snapped = grid.snap(torch.from_numpy(labels))
    expected = grid.unravel(torch.arange(grid.num_points))
    mismatched = (snapped != expected).any(dim=1)
    if bool(mismatched.any()):
        row = int(mismatched.nonzero()[0])
        raise DataError(f"{path}: labels row {row} {labels[row].tolist()} is not the grid point "
                        f"{expected[row].tolist()} that its index gives (C order over "
                        f"{list(grid.sizes)})")


def load_official(path: Path, grid: FactorGrid, file_checks: dict, cache_dir: Path):
    """Verify 3dshapes.h5 and return (memory-mapped (N, 64, 64, 3) cache, details)."""
    with files.open_hdf5(path) as handle:
        images = files.hdf5_dataset(handle, "images")
        labels = files.hdf5_dataset(handle, "labels")
        files.require_array(f"{path}[images]", images.shape, images.dtype,
                            (grid.num_points, IMAGE_SIZE, IMAGE_SIZE, 3), "uint8")
        files.require_array(f"{path}[labels]", labels.shape, labels.dtype,
                            (grid.num_points, 6), "float64")
        # Read whole chunks at a time: gzip chunks are decompressed once each.
        chunk_rows = images.chunks[0] if images.chunks else ROWS_PER_BLOCK
        rows_per_block = max(1, ROWS_PER_BLOCK // chunk_rows) * chunk_rows

    def fill(out: np.ndarray) -> None:
        with files.open_hdf5(path) as handle:
            _check_labels(path, handle["labels"][()], grid)
            images = handle["images"]
            for start in range(0, grid.num_points, rows_per_block):
                images.read_direct(out, np.s_[start:start + rows_per_block],
                                   np.s_[start:start + rows_per_block])

    return files.cached_official(NAME, path, file_checks.get(path.name), cache_dir,
                                 (grid.num_points, IMAGE_SIZE, IMAGE_SIZE, 3), fill)


def shapes3d(source="auto", device=torch.device("cpu"), *, data_dir=None, cache_dir=None,
             path=None, factors=None, factor_sizes=None, file_checks=None, keep_on_device=None):
    """Shapes3D (official 3dshapes.h5 or a ray-cast stand-in room).

    Args:
        data_dir: folder holding 3dshapes.h5 (default $DLBENCH_DATA_DIR).
        cache_dir: where the decompressed cache goes (default $DLBENCH_CACHE_DIR or ~/.cache/dlbench).
        path: the published file itself.
        factors: exposed factor names (default all six).
        factor_sizes: a leading sub-grid (variant or fixture files).
        file_checks: {file name: {bytes, md5 | sha256}} overriding the published table.
        keep_on_device: keep the images on the GPU (default: when they fit).
    """
    device = torch.device(device)
    grid = GRID if factor_sizes is None else GRID.leading_subgrid(factor_sizes)
    located = files.locate(OFFICIAL_FILES, data_dir=data_dir, cache_dir=cache_dir, path=path,
                           file_checks=file_checks)
    return make_dataset(
        NAME, source, device, grid, located=located,
        load_official=lambda file: load_official(file, grid, located.checks, located.cache_dir),
        render=ProceduralShapes3D(grid, device), observation_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
        factors=factors, keep_on_device=keep_on_device,
        stand_in="procedural Shapes3D: ray-cast room, 480 geometries recoloured per hue triple")


shapes3d.official_files = OFFICIAL_FILES
