"""Speed of batch sampling against a naive per-index loader, measured in the same call.

Official sources use the real files when DLBENCH_DATA_DIR holds them, else official-format files
of a leading sub-grid written to a temporary folder (the loader and the gather are the same).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dlbench.datasets import dsprites, fixtures, mpi3d, shapes3d
from dlbench.datasets.files import resolve_data_dir

OFFICIAL = {"dsprites": (dsprites.dsprites, dsprites.NPZ_NAME),
            "shapes3d": (shapes3d.shapes3d, shapes3d.FILE_NAME),
            "mpi3d_real": (mpi3d.FACTORIES["mpi3d_real"], "mpi3d_real.npz")}


def _official_fixtures(folder: Path, quick: bool):
    """(dataset name, factory, factory kwargs) for each official-format fixture."""
    grids = {"dsprites": (1, 3, 6, 10, 4, 4) if quick else (1, 3, 6, 40, 8, 8),
             "shapes3d": (2, 2, 2, 8, 4, 15) if quick else (3, 3, 3, 8, 4, 15),
             "mpi3d_real": (1, 1, 1, 3, 3, 10, 10) if quick else (2, 2, 2, 3, 3, 10, 10)}
    writers = {"dsprites": fixtures.write_dsprites_npz,
               "shapes3d": lambda path, sizes: fixtures.write_shapes3d_h5(path, sizes, True),
               "mpi3d_real": fixtures.write_mpi3d_npz}
    for name, write in writers.items():
        file_name = OFFICIAL[name][1]
        written = write(folder / file_name, grids[name])
        yield name, {"factor_sizes": grids[name], "data_dir": folder, "cache_dir": folder,
                     "file_checks": fixtures.file_checks_for(written)}


def _naive_batch(dataset, index: np.ndarray) -> torch.Tensor:
    """A per-index loader: one Python call per observation, then a stack (a typical
    torch Dataset.__getitem__ with the default collate)."""
    images = dataset.images
    if hasattr(images, "render"):
        items = [images.render(dataset.grid.unravel(torch.tensor([i])))[0] for i in index]
    else:
        stored = images.images.numpy()
        items = []
        for i in index:
            np.unravel_index(i, dataset.grid.sizes)
            items.append(torch.from_numpy(np.array(stored[i])).permute(2, 0, 1))
    return torch.stack(items)


def _measure(label: str, dataset, num: int, repeats: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    index = torch.randint(len(dataset), (num,), generator=generator).numpy()
    # Warm both paths first (page faults of the memory map, the stand-in's one-off geometry).
    dataset.sample(num, generator)
    _naive_batch(dataset, index)
    start = time.perf_counter()
    for _ in range(repeats):
        dataset.sample(num, generator)
    ours = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    _naive_batch(dataset, index)
    baseline = time.perf_counter() - start
    return {"name": f"sample {label} [{dataset.source}]", "seconds": ours,
            "baseline_seconds": baseline, "ratio": baseline / ours, "batch": num,
            "observations_per_second": num / ours,
            "baseline_observations_per_second": num / baseline,
            "baseline": "per-index loader + torch.stack", "grid_points": len(dataset)}


def bench_dataset_sampling(quick: bool) -> list[dict]:
    """Observations per second of `sample` for each dataset and source vs a per-index loader."""
    num, repeats = (256, 2) if quick else (2048, 3)
    results = []
    for name, factory in (("dsprites", dsprites.dsprites), ("shapes3d", shapes3d.shapes3d),
                          ("mpi3d_real", mpi3d.FACTORIES["mpi3d_real"])):
        results.append(_measure(name, factory(source="procedural"), num, repeats))
    real_folder = resolve_data_dir(None)
    with tempfile.TemporaryDirectory() as folder:
        for name, kwargs in _official_fixtures(Path(folder), quick):
            factory, file_name = OFFICIAL[name]
            if real_folder is not None and (real_folder / file_name).is_file():
                dataset, label = factory(source="official", data_dir=real_folder), name
            else:
                dataset = factory(source="official", **kwargs)
                label = f"{name} (official-format fixture)"
            results.append(_measure(label, dataset, num, repeats))
    return results


def bench_shapes3d_full_grid(quick: bool) -> list[dict]:
    """Seconds to render every Shapes3D stand-in image (480,000; a tenth when quick) vs
    rendering them one at a time (timed on a sample, extrapolated)."""
    renderer = shapes3d.ProceduralShapes3D(shapes3d.GRID, torch.device("cpu"))
    start = time.perf_counter()
    renderer.render_geometries_once()
    geometry_seconds = time.perf_counter() - start
    total = shapes3d.GRID.num_points // (10 if quick else 1)
    start = time.perf_counter()
    for first in range(0, total, 8192):
        renderer(shapes3d.GRID.unravel(torch.arange(first, min(first + 8192, total))))
    colour_seconds = time.perf_counter() - start
    probe = 500
    start = time.perf_counter()
    for i in range(probe):
        renderer(shapes3d.GRID.unravel(torch.tensor([i * 997 % total])))
    per_image = (time.perf_counter() - start) / probe
    seconds = geometry_seconds + colour_seconds
    return [{"name": f"render shapes3d stand-in, {total} images", "seconds": seconds,
             "geometry_seconds": geometry_seconds, "baseline_seconds": per_image * total,
             "ratio": per_image * total / seconds, "images": total,
             "baseline": f"one image per call, timed on {probe}, extrapolated",
             "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}]
