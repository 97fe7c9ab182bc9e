"""Run records: versioned JSON data written atomically, and model state as pickle-free .npz.

A record is data, never code: reading one parses JSON, checks every field against the schema and the
record's own digest, and executes nothing. A record that fails any check is refused with one line
naming the file and the field.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from dlbench.atomic import atomic_write, atomic_write_json
from dlbench.errors import ConfigError, RecordError

# dlbench.run/3 binds the run's state file to its record: a record listing state.npz in `files` holds its sha256 as
# `state_digest`. dlbench.run/2 records (written before) are still read; their state file is used unverified.
SCHEMA = "dlbench.run/3"
UNBOUND_STATE_SCHEMA = "dlbench.run/2"
KNOWN_SCHEMAS = frozenset({SCHEMA, UNBOUND_STATE_SCHEMA})
RECORD_FILE = "record.json"
STATE_FILE = "state.npz"
CONFIG_FILE = "operative_config.gin"
# Entries of record["metrics"] beside the registered metrics: a model's closed-form scores and its training scores.
EXACT_METRICS = "exact"
TRAINING_SCORES = "training"
DIGEST_FIELD = "digest"
STATE_DIGEST_FIELD = "state_digest"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_dict_of_dicts(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())


# field -> (check, what is expected); nested fields are dotted.
_SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "schema": (lambda v: v in KNOWN_SCHEMAS, f"one of {sorted(KNOWN_SCHEMAS)}"),
    "run_id": (lambda v: isinstance(v, str) and v and "/" not in v, "a run id string"),
    "fit_hash": (lambda v: isinstance(v, str) and len(v) >= 8, "a hex hash string"),
    "created": (lambda v: isinstance(v, str), "an ISO timestamp string"),
    "model": (lambda v: isinstance(v, dict), "an object"),
    "model.name": (lambda v: isinstance(v, str), "a string"),
    "model.plugin": (lambda v: isinstance(v, str), "a string"),
    "model.distribution": (lambda v: isinstance(v, str), "a string"),
    "model.version": (lambda v: isinstance(v, str), "a string"),
    "model.hyperparameters": (lambda v: isinstance(v, dict), "an object"),
    "dataset": (lambda v: isinstance(v, dict), "an object"),
    "dataset.name": (lambda v: isinstance(v, str), "a string"),
    "dataset.source": (lambda v: isinstance(v, str), "a string"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**63, "an integer >= 0"),
    "solution_axes": (lambda v: isinstance(v, dict) and all(isinstance(x, list) and x for x in v.values()),
                      "an object of non-empty label lists"),
    "replicate_axes": (_is_str_list, "a list of axis names"),
    "metrics": (_is_dict_of_dicts, "an object of metric results (objects)"),
    "metrics_history": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
                        "a list of replaced results (objects)"),
    "timings": (lambda v: isinstance(v, dict) and all(_is_number(x) for k, x in v.items() if k.endswith("seconds")),
                "an object of finite seconds"),
    "fit": (lambda v: isinstance(v, dict), "an object"),
    "environment": (lambda v: isinstance(v, dict), "an object"),
    "config_files": (_is_str_list, "a list of strings"),
    "bindings": (_is_str_list, "a list of strings"),
    "config": (lambda v: isinstance(v, str), "a gin config string"),
    "operative_config": (lambda v: isinstance(v, str), "a gin config string"),
    "files": (_is_str_list, "a list of file names"),
    DIGEST_FIELD: (lambda v: isinstance(v, str) and v.startswith("sha256:"), "'sha256:<hex>'"),
}
_STATE_DIGEST = (lambda v: isinstance(v, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", v) is not None,
                 "'sha256:<64 hex digits>' of the state file")


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


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON; a record holds null where a value is not finite")


def _out_of_range(text: str) -> ValueError:
    shown = text if len(text) <= 20 else f"{text[:20]}…"
    return ValueError(f"the number {shown} is out of range of a float")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # json reads 1e999 as infinity, which a record never holds
        raise _out_of_range(text)
    return value


def _float_sized_int(text: str) -> int:
    value = int(text)
    if abs(value) > sys.float_info.max:  # a score would overflow becoming a float
        raise _out_of_range(text)
    return value


def parse_record_json(data: bytes) -> Any:
    """JSON as records are written (strict, finite): NaN, Infinity and numbers beyond a float's range are refused,
    like text that is not JSON, with a ValueError."""
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_float_sized_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def record_digest(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the record without its digest: any edit of the file shows."""
    content = {key: value for key, value in record.items() if key != DIGEST_FIELD}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _check_field(record: dict, dotted: str, check: tuple[Callable[[Any], bool], str], where: str) -> None:
    valid, expected = check
    parent, _, name = dotted.rpartition(".")
    holder = record.get(parent) if parent else record
    if name not in holder:
        raise RecordError(f"{where}: record lacks the field {dotted!r} ({expected})")
    if not valid(holder[name]):
        shown = json.dumps(holder[name])[:60]
        raise RecordError(f"{where}: field {dotted!r} = {shown} is not accepted; expected {expected}")


def check_record(record: Any, where: str) -> dict[str, Any]:
    """The record if every field has its schema's type and its digest matches; else a RecordError naming the field."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record is a JSON object, not {type(record).__name__}")
    schema = record.get("schema")
    if schema not in KNOWN_SCHEMAS:
        raise RecordError(f"{where}: unknown record schema {schema!r}; this dlbench reads "
                          f"{', '.join(sorted(KNOWN_SCHEMAS))}")
    for dotted, check in _SCHEMA.items():
        _check_field(record, dotted, check, where)
    if schema != UNBOUND_STATE_SCHEMA and STATE_FILE in record["files"]:
        _check_field(record, STATE_DIGEST_FIELD, _STATE_DIGEST, where)
    unknown_axes = [axis for axis in record["replicate_axes"] if axis not in record["solution_axes"]]
    if unknown_axes:
        raise RecordError(f"{where}: replicate axis {unknown_axes[0]!r} is not one of the solution axes "
                          f"{list(record['solution_axes'])}")
    if not record["run_id"].endswith(record["fit_hash"]):
        raise RecordError(f"{where}: run_id {record['run_id']!r} does not end with its fit_hash "
                          f"{record['fit_hash']!r}; the record was edited")
    if record_digest(record) != record[DIGEST_FIELD]:
        raise RecordError(f"{where}: content does not match its digest; the record was edited or damaged after "
                          "it was written (it is refused; rerun or restore it)")
    return record


def write_record(run_dir: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """Write the record atomically with its digest; return it as written (plain JSON values)."""
    written = to_jsonable({key: value for key, value in record.items() if key != DIGEST_FIELD})
    written[DIGEST_FIELD] = record_digest(written)
    check_record(written, f"{Path(run_dir) / RECORD_FILE} (being written)")
    atomic_write_json(Path(run_dir) / RECORD_FILE, written)
    return written


def read_record(run_dir: Path) -> dict[str, Any]:
    """The record of a finished run; refuses files that are not valid records of a known schema."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        raise RecordError(f"{run_dir}: no {RECORD_FILE}; give the directory of a finished run")
    try:
        record = parse_record_json(path.read_bytes())
    except ValueError as exc:  # UnicodeDecodeError and json's errors included
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror})") from None
    return check_record(record, str(path))


def save_state(path: Path, state: Mapping[str, torch.Tensor]) -> str:
    """Write flat named tensors as an .npz (atomically) and return the digest of the bytes written (what a record
    binds the file by). bfloat16, which numpy lacks, is stored as float32."""
    arrays = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        arrays[name] = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    content = buffer.getvalue()
    atomic_write(path, lambda stream: stream.write(content))
    return state_digest(content)


def load_state(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Tensors saved by `save_state`; never unpickles."""
    return _state_from_bytes(_read_state_bytes(Path(path)), Path(path), device)


def _read_state_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise RecordError(f"{path}: state file not found")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror})") from None


def _state_from_bytes(content: bytes, path: Path, device: torch.device | str) -> dict[str, torch.Tensor]:
    stream = io.BytesIO(content)
    if not zipfile.is_zipfile(stream):  # numpy would guess "pickle" for any other bytes
        raise RecordError(f"{path}: not an .npz state file (empty, truncated or another format)")
    try:
        with np.load(stream, allow_pickle=False) as arrays:
            return {name: torch.from_numpy(arrays[name]).to(device) for name in arrays.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise RecordError(f"{path}: unreadable state file ({str(exc).splitlines()[0]})") from None


def state_digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def file_digest(path: Path) -> str:
    """state_digest of a file's content, read in blocks."""
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return "sha256:" + hasher.hexdigest()


def bound_state_digest(record: Mapping[str, Any], where: str) -> str | None:
    """The digest a record holds of its state file; None for a record of the schema before state digests (its state
    is unverified); a RecordError for a record that lists no state file."""
    if record["schema"] == UNBOUND_STATE_SCHEMA:
        return None
    if STATE_FILE not in record["files"]:
        raise RecordError(f"{where}: the record lists no {STATE_FILE} (its files: {record['files']}); expected the "
                          "record of a run that saved its fitted state")
    return record[STATE_DIGEST_FIELD]


def check_bound_state(state_file: Path, owner: Path, digest: str | None, actual: str | None = None) -> None:
    """Refuse `state_file` unless its digest (`actual`, computed when not given) is the one `owner` (the record, or a
    partial run's fit.json) holds; with no digest held (an older record) say on stderr that it is used unverified."""
    if digest is None:
        print(f"dlbench: note: {owner} holds no digest of {state_file} (schema {UNBOUND_STATE_SCHEMA}); the state "
              "is used unverified", file=sys.stderr)
        return
    if not state_file.is_file():
        raise RecordError(f"{state_file}: state file not found (its record {owner} lists it)")
    if (actual or file_digest(state_file)) != digest:
        raise RecordError(f"{state_file} does not match the state digest in {owner}: it is another run's state or "
                          "was changed after the run; expected the run's own state file (restore it, or run the "
                          "config again)")


def load_bound_state(state_file: Path, owner: Path, digest: str | None,
                     device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of `state_file` once its digest matches the one `owner` holds (check_bound_state); the bytes
    checked are the bytes loaded."""
    content = _read_state_bytes(Path(state_file))
    check_bound_state(Path(state_file), Path(owner), digest, state_digest(content))
    return _state_from_bytes(content, Path(state_file), device)


def load_run_state(run_dir: str | Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The fitted state of a finished run (its state.npz as named tensors), once its record has been read and checked
    (read_record) and the state file matches the digest the record holds; a state file that does not (another run's,
    or changed) is refused with a RecordError naming both files. A record written before state digests (schema
    dlbench.run/2) gives its state unverified, with a note on stderr."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    record_file = run_dir / RECORD_FILE
    return load_bound_state(run_dir / STATE_FILE, record_file, bound_state_digest(record, str(record_file)), device)


class StateMismatchError(RecordError, ConfigError):
    """A state that does not fit the model's configuration: a damaged file, or one made by another config."""


def check_state_entry(state: Mapping[str, torch.Tensor], name: str, shape: tuple[int | None, ...],
                      dtype: torch.dtype | None = None, owner: str = "model") -> torch.Tensor:
    """The state entry `name` if it has `shape` (None: any length) and `dtype`; else a RecordError naming it. The
    shared check every model's load_state_dict makes, so a damaged or edited state file is never used."""
    if name not in state:
        raise StateMismatchError(f"{owner} state lacks {name!r} (it has {sorted(state)})")
    tensor = state[name]
    fits = tensor.ndim == len(shape) and all(e is None or s == e for s, e in zip(tensor.shape, shape))
    if not fits or (dtype is not None and tensor.dtype != dtype):
        wanted = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise StateMismatchError(f"{owner} state {name!r} has shape {tuple(tensor.shape)} {tensor.dtype}; this "
                          f"configuration expects {wanted}{'' if dtype is None else ' ' + str(dtype)}")
    return tensor
