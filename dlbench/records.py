"""Run records: versioned JSON data written atomically, and model state as pickle-free .npz."""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from dlbench.errors import RecordError

SCHEMA = "dlbench.run/1"
KNOWN_SCHEMAS = frozenset({SCHEMA})
RECORD_FILE = "record.json"
STATE_FILE = "state.npz"
CONFIG_FILE = "operative_config.gin"
# The entry of record["metrics"] for a model's own closed-form scores, beside registered metrics.
EXACT_METRICS = "exact"
REQUIRED_FIELDS = ("schema", "run_id", "model", "dataset", "seed", "metrics", "config",
                   "operative_config")


def atomic_write(path: Path, write) -> None:
    """Call write(file object) on a temp file beside `path`, then rename it into place, so a reader
    never sees a half-written file and an interrupted write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda stream: stream.write(text.encode()))


def to_jsonable(value: Any) -> Any:
    """Tensors and arrays become (nested) lists; non-finite floats become null (strict JSON)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_record(run_dir: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """Write the record atomically; return it as written (plain JSON values)."""
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    written = to_jsonable(record)
    atomic_write_text(Path(run_dir) / RECORD_FILE,
                      json.dumps(written, indent=1, allow_nan=False) + "\n")
    return written


def read_record(run_dir: Path) -> dict[str, Any]:
    """The record of a finished run; refuses files that are not records of a known schema."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        raise RecordError(f"{run_dir}: no {RECORD_FILE}; give the directory of a finished run")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    schema = record.get("schema") if isinstance(record, dict) else None
    if schema not in KNOWN_SCHEMAS:
        raise RecordError(f"{path}: unknown record schema {schema!r}; this dlbench reads "
                          f"{', '.join(sorted(KNOWN_SCHEMAS))}")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise RecordError(f"{path}: record lacks the fields {missing}")
    return record


def save_state(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in state.items()}
    atomic_write(path, lambda stream: np.savez_compressed(stream, **arrays))


def load_state(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Tensors saved by `save_state`; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {name: torch.from_numpy(arrays[name]).to(device) for name in arrays.files}
    except FileNotFoundError:
        raise RecordError(f"{path}: state file not found") from None
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise RecordError(f"{path}: unreadable state file ({exc})") from None
