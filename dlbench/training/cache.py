"""A cache of trained solutions shared across runs, keyed by everything that determines them.

A λβ-VAE sweep needs one β-VAE per (β, seed), not one per cell: the β stage of each solution is stored
here under a hash of its dataset and source, architecture, latent size, β, seed, steps, batch,
optimiser settings and the model code's version, so a later run with an overlapping grid reuses what
exists and changing any input misses. Entries are written atomically and read with weights_only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from dlbench.atomic import atomic_write
from dlbench.config import identity_hash
from dlbench.datasets.files import resolve_cache_dir
from dlbench.errors import RecordError

ENTRY_FORMAT = "dlbench.solution/1"


class SolutionCache:
    """Trained solutions under `root/<kind>/<key>.pt`; root defaults to $DLBENCH_CACHE_DIR or ~/.cache/dlbench."""

    def __init__(self, kind: str, root: str | Path | None = None):
        self.directory = resolve_cache_dir(root) / kind

    @staticmethod
    def key(identity: Mapping[str, Any]) -> str:
        return identity_hash(dict(identity))

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pt"

    def load(self, key: str, identity: Mapping[str, Any]) -> Any | None:
        """The stored solution, or None; an entry that is unreadable or made for another identity is refused."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to read it means the file cannot be trusted
            raise RecordError(f"{path}: not a readable cached solution ({str(exc).splitlines()[0][:100]}); delete "
                              "it to train that solution again") from None
        if not isinstance(entry, dict) or entry.get("format") != ENTRY_FORMAT or entry.get("identity") != identity:
            raise RecordError(f"{path}: a cached solution for something else; delete it to train that solution "
                              "again")
        return entry["solution"]

    def store(self, key: str, identity: Mapping[str, Any], solution: Any) -> Path:
        path = self.path(key)
        payload = {"format": ENTRY_FORMAT, "identity": dict(identity), "solution": solution}
        atomic_write(path, lambda stream: torch.save(payload, stream))
        return path
