"""A cache of trained solutions shared across runs, keyed by everything that determines them.

A λβ-VAE sweep needs one β-VAE per (β, seed), not one per cell: the β stage of each solution is stored
here under a hash of its dataset and source, architecture, latent size, β, seed, steps, batch,
optimiser settings and the model code's version, so a later run with an overlapping grid reuses what
exists and changing any input misses. Entries are written atomically and read with weights_only.

Nothing is reused unverified: an entry carries a sha256 digest of its identity and of every value of its
solution (each tensor's dtype, shape and bytes), checked on load. An entry that is unreadable, empty,
of another format, made for another identity or not matching its digest is a miss: the solution is
trained again (and the entry replaced), and one line on stderr names the file and why.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import torch

from dlbench.atomic import atomic_write
from dlbench.config import identity_hash
from dlbench.datasets.files import CACHE_DIR_ENV, resolve_cache_dir
from dlbench.errors import ConfigError

ENTRY_FORMAT = "dlbench.solution/2"  # /1 entries carried no digest: they are missed and replaced


class SolutionCache:
    """Trained solutions under `root/<kind>/<key>.pt`; root defaults to $DLBENCH_CACHE_DIR or ~/.cache/dlbench.
    A directory that cannot hold the cache (a file, read-only, not creatable) is refused when the cache is made,
    before anything is trained."""

    def __init__(self, kind: str, root: str | Path | None = None):
        self.directory = resolve_cache_dir(root) / kind
        _check_usable(self.directory, root)

    @staticmethod
    def key(identity: Mapping[str, Any]) -> str:
        return identity_hash(dict(identity))

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pt"

    def load(self, key: str, identity: Mapping[str, Any]) -> Any | None:
        """The stored solution, or None (a miss) when there is none or the entry cannot be trusted."""
        path = self.path(key)
        if not path.is_file():
            return None
        entry, problem = _read_entry(path, identity)
        if problem is not None:
            print(f"dlbench: cached solution {path} {problem}; training it again", file=sys.stderr)
            return None
        return entry["solution"]

    def store(self, key: str, identity: Mapping[str, Any], solution: Any) -> Path:
        path = self.path(key)
        payload = {"format": ENTRY_FORMAT, "identity": dict(identity), "digest": entry_digest(identity, solution),
                   "solution": solution}
        atomic_write(path, lambda stream: torch.save(payload, stream))
        return path


def _read_entry(path: Path, identity: Mapping[str, Any]) -> tuple[dict | None, str | None]:
    """(the entry at `path`, None) if it is a verified entry for `identity`, else (None, what is wrong with it)."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # empty, truncated, another format: any failure means it cannot be trusted
        reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        return None, f"is unreadable ({reason})"
    if not isinstance(entry, dict) or entry.get("format") != ENTRY_FORMAT:
        found = entry.get("format") if isinstance(entry, dict) else type(entry).__name__
        return None, f"has format {found!r}, not {ENTRY_FORMAT!r} (an older or foreign entry)"
    if entry.get("identity") != identity:
        return None, "was made for another solution (its identity differs)"
    if "solution" not in entry or entry.get("digest") != entry_digest(identity, entry["solution"]):
        return None, "does not match its digest (damaged or edited)"
    return entry, None


def entry_digest(identity: Mapping[str, Any], solution: Any) -> str:
    """sha256 of the identity and of every value of the solution, tensors by dtype, shape and bytes."""
    hasher = hashlib.sha256()
    hasher.update(json.dumps(dict(identity), sort_keys=True, separators=(",", ":")).encode())
    _hash_value(hasher, solution)
    return "sha256:" + hasher.hexdigest()


def _hash_value(hasher, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        hasher.update(f"tensor {value.dtype} {tuple(value.shape)}:".encode())
        hasher.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        hasher.update(f"map {len(value)}:".encode())
        for name in sorted(value, key=str):
            hasher.update(f"{name!r}=".encode())
            _hash_value(hasher, value[name])
    elif isinstance(value, (list, tuple)):
        hasher.update(f"list {len(value)}:".encode())
        for item in value:
            _hash_value(hasher, item)
    else:
        hasher.update(f"{type(value).__name__} {value!r};".encode())


def _check_usable(directory: Path, root: str | Path | None) -> None:
    """Refuse a cache directory that is a file, lies under one, or that this user cannot create or write."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = f"{existing} is a file"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable" if existing == directory else f"it cannot be created in {existing}"
    else:
        return
    if root is not None:
        source = f"cache directory {str(root)!r}"
    elif os.environ.get(CACHE_DIR_ENV):
        source = f"${CACHE_DIR_ENV} = {os.environ[CACHE_DIR_ENV]!r}"
    else:
        source = f"the default cache directory (${CACHE_DIR_ENV} unset) {str(directory.parent)!r}"
    raise ConfigError(f"{source} cannot hold the stage cache {directory}: {problem}; expected a writable directory "
                      f"(or one that can be created): set ${CACHE_DIR_ENV} to one")
