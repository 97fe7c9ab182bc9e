from pathlib import Path

import torch

from dlbench.datasets.fixtures import file_checks_for as checks_for  # noqa: F401


def all_observations(dataset) -> torch.Tensor:
    classes = dataset.exposed_grid.unravel(torch.arange(len(dataset)))
    return dataset.observations_from_factors(classes)


def truncate(path: Path, keep_fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep_fraction)])
    return path


def leftover_caches(cache_dir: Path) -> list[Path]:
    """Cache arrays or temporary files left in the cache folder (stamps are not caches)."""
    if not cache_dir.exists():
        return []
    return [p for p in cache_dir.iterdir() if p.suffix in (".npy", ".tmp")]
