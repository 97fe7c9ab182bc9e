"""Finding, verifying and caching the official data files.

The published files are either compressed (dSprites npz, 3dshapes.h5) or huge (MPI3D npz). The
first use verifies the file (size and checksum), then streams it into a memory-mappable .npy cache
that is written to a temporary name, checked and renamed into place; later runs reuse it. The
cache's sidecar JSON records which source file (path, size, mtime, digest) it was built from.
Nothing here ever unpickles: npz members are parsed by their zip and .npy headers.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from dlbench.atomic import atomic_path, atomic_write_json
from dlbench.errors import DataError
from dlbench.interfaces import OfficialFiles

DATA_DIR_ENV = "DLBENCH_DATA_DIR"
CACHE_DIR_ENV = "DLBENCH_CACHE_DIR"
CACHE_FORMAT_VERSION = 1
_HASH_BLOCK_BYTES = 1 << 22
_ZIP_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature .. name length, extra length
_ZIP_LOCAL_SIGNATURE = b"PK\x03\x04"


class DataWarning(UserWarning):
    """A data file that is usable but does not match the published reference."""


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The explicit `data_dir`, else $DLBENCH_DATA_DIR, else None."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return Path(chosen).expanduser() if chosen else None


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """The explicit `cache_dir`, else $DLBENCH_CACHE_DIR, else ~/.cache/dlbench."""
    chosen = cache_dir if cache_dir is not None else os.environ.get(CACHE_DIR_ENV)
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "dlbench"


def find_file(path: str | os.PathLike | None, data_dir: Path | None,
              file_names: tuple[str, ...]) -> Path | None:
    """An explicit `path` (which must exist), else the first of `file_names` in `data_dir`."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise DataError(f"{explicit}: no such file")
        return explicit
    if data_dir is None:
        return None
    return next((data_dir / name for name in file_names if (data_dir / name).is_file()), None)


@dataclass(frozen=True)
class FileCheck:
    """The published size and checksum of a file; None where the reference gives none."""

    bytes: int | None = None
    md5: str | None = None
    sha256: str | None = None

    @classmethod
    def from_mapping(cls, entry: Mapping) -> FileCheck:
        unknown = set(entry) - {"bytes", "md5", "sha256"}
        if unknown:
            raise DataError(f"file check {dict(entry)}: unknown keys {sorted(unknown)}; "
                            "accepted: bytes, md5, sha256")
        return cls(**entry)

    @property
    def algorithm(self) -> str | None:
        return "sha256" if self.sha256 else "md5" if self.md5 else None

    @property
    def digest(self) -> str | None:
        return self.sha256 or self.md5


def file_checks_table(defaults: Mapping[str, FileCheck],
                      overrides: Mapping[str, Mapping] | None) -> dict[str, FileCheck]:
    """The published table with per-file-name overrides (a variant file, or a test's fixture)."""
    table = dict(defaults)
    for name, entry in (overrides or {}).items():
        table[name] = FileCheck.from_mapping(entry)
    return table


@dataclass(frozen=True)
class LocatedFiles:
    """Where a dataset factory's files are: the data directory, the official file found there (or given), the
    checks to verify it against, and the cache directory."""

    official: OfficialFiles
    data_dir: Path | None
    official_file: Path | None
    checks: dict[str, FileCheck]
    cache_dir: Path


def locate(official: OfficialFiles, *, data_dir=None, cache_dir=None, path=None, file_checks=None) -> LocatedFiles:
    """The preamble every file-backed dataset factory shares: resolve the directories, find the file, merge checks."""
    folder = resolve_data_dir(data_dir)
    return LocatedFiles(official, folder, find_file(path, folder, official.names),
                        file_checks_table(official.checks, file_checks), resolve_cache_dir(cache_dir))


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_identity(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def verify_source(path: Path, check: FileCheck | None, *, strict: bool, cache_dir: Path,
                  force: bool = False) -> dict:
    """Check `path` against its published size and checksum; return its stamp.

    A mismatch raises DataError when `strict`, else warns (MPI3D's checksums changed upstream).
    The stamp (path, size, mtime, digest) is remembered in the cache directory, so an unchanged
    file is hashed once, not on every run; `force` hashes it again.
    """
    check = check or FileCheck()
    identity = _file_identity(path)
    stamp_path = cache_dir / f"{path.name}.verified.json"
    remembered = None if force else _read_json(stamp_path)
    if remembered and {k: remembered.get(k) for k in identity} == identity \
            and remembered.get("expected") == check.digest:
        return remembered

    problems = []
    if check.bytes is not None and identity["bytes"] != check.bytes:
        problems.append(f"size {identity['bytes']} bytes, expected {check.bytes}")
    algorithm = check.algorithm or "sha256"
    digest = file_digest(path, algorithm) if (check.digest or force) else None
    if check.digest and digest != check.digest:
        problems.append(f"{algorithm} {digest}, expected {check.digest}")
    if problems:
        message = f"{path}: {'; '.join(problems)} (truncated, corrupt or a different release)"
        if strict:
            raise DataError(message + "; download the file again")
        warnings.warn(message, DataWarning, stacklevel=2)
    stamp = {**identity, "algorithm": algorithm if digest else None, "digest": digest,
             "expected": check.digest, "matches_reference": not problems}
    atomic_write_json(stamp_path, stamp)
    return stamp


def cached_array(cache_path: Path, shape: tuple[int, ...], dtype: np.dtype, source_stamp: dict,
                 fill: Callable[[np.ndarray], None]) -> np.memmap:
    """A read-only memory map of the .npy cache built by `fill` from the stamped source file.

    Reused when its sidecar names the same source and its header the same shape; otherwise
    rebuilt under a temporary name, checked, and renamed into place. A failure leaves no cache.
    """
    meta_path = cache_path.with_name(cache_path.name + ".json")
    meta = _read_json(meta_path)
    wanted = {"format": CACHE_FORMAT_VERSION, "shape": list(shape), "dtype": np.dtype(dtype).str,
              "source": {k: source_stamp[k] for k in ("path", "bytes", "mtime_ns")}}
    if meta and {k: meta.get(k) for k in wanted} == wanted and cache_path.is_file():
        cached = np.load(cache_path, mmap_mode="r")
        if cached.shape == tuple(shape) and cached.dtype == dtype:
            return cached

    meta_path.unlink(missing_ok=True)  # a stale sidecar must never vouch for a new cache
    with atomic_path(cache_path) as temporary:
        writable = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
        fill(writable)
        writable.flush()
        del writable
        written = np.load(temporary, mmap_mode="r")
        if written.shape != tuple(shape) or written.dtype != dtype:
            raise DataError(f"{temporary}: cache came out as {written.shape} {written.dtype}")
        del written
        cache_digest = file_digest(temporary, "sha256")
    atomic_write_json(meta_path, {**wanted, "sha256": cache_digest, "source_digest": source_stamp.get("digest")})
    return np.load(cache_path, mmap_mode="r")


def verify_cache(cache_path: Path) -> str:
    """Recompute the cache's sha256 and compare with its sidecar; return the digest."""
    meta = _read_json(cache_path.with_name(cache_path.name + ".json"))
    if not cache_path.is_file() or not meta:
        raise DataError(f"{cache_path}: no cache yet; run `dlbench data prepare` first")
    digest = file_digest(cache_path, "sha256")
    if digest != meta.get("sha256"):
        raise DataError(f"{cache_path}: sha256 {digest} differs from the one recorded when it "
                        "was written; delete it and run `dlbench data prepare` again")
    return digest


@dataclass(frozen=True)
class NpyMember:
    """An array stored as `key`.npy inside an npz (a zip), located without loading it."""

    path: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    compressed: bool
    data_offset: int | None  # byte offset of the array data in the npz; None when compressed


def _read_npy_header(stream, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran_order, dtype = read_header(stream)
    except (ValueError, KeyError, OSError) as error:
        raise DataError(f"{where}: not a valid .npy member ({error})") from None
    if dtype.hasobject:
        raise DataError(f"{where}: holds Python objects, which would need unpickling; refused")
    if fortran_order:
        raise DataError(f"{where}: stored in Fortran order; expected C order")
    return shape, dtype, stream.tell()


def npz_member(path: Path, key: str) -> NpyMember:
    """Locate `key` in the npz at `path` by its zip local header and its .npy header."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            if key not in names:
                raise DataError(f"{path}: no array {key!r} (it holds {names})")
            info = archive.getinfo(key + ".npy")
            compressed = info.compress_type != zipfile.ZIP_STORED
            with archive.open(info) as member_stream:
                shape, dtype, _ = _read_npy_header(member_stream, f"{path}[{key}]")
    except zipfile.BadZipFile as error:
        raise DataError(f"{path}: not a complete npz/zip file ({error}); is it truncated?") \
            from None
    data_offset = None
    if not compressed:
        with open(path, "rb") as raw:
            raw.seek(info.header_offset)
            fields = _ZIP_LOCAL_HEADER.unpack(raw.read(_ZIP_LOCAL_HEADER.size))
            if fields[0] != _ZIP_LOCAL_SIGNATURE:
                raise DataError(f"{path}: damaged zip local header for {key!r}")
            raw.seek(info.header_offset + _ZIP_LOCAL_HEADER.size + fields[-2] + fields[-1])
            _, _, data_offset = _read_npy_header(raw, f"{path}[{key}]")
        needed = data_offset + int(np.prod(shape)) * dtype.itemsize
        if path.stat().st_size < needed:
            raise DataError(f"{path}: truncated; {key!r} needs {needed} bytes, file has "
                            f"{path.stat().st_size}")
    return NpyMember(path, key, tuple(shape), dtype, compressed, data_offset)


def iter_npz_rows(member: NpyMember, rows_per_block: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) pairs streamed from the member, compressed or not, without np.load."""
    row_shape = member.shape[1:]
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * member.dtype.itemsize
    try:
        with zipfile.ZipFile(member.path) as archive, archive.open(member.key + ".npy") as stream:
            _read_npy_header(stream, f"{member.path}[{member.key}]")
            for start in range(0, member.shape[0], rows_per_block):
                count = min(rows_per_block, member.shape[0] - start)
                raw = stream.read(count * row_bytes)
                if len(raw) != count * row_bytes:
                    raise DataError(f"{member.path}: {member.key!r} ends at row {start} of "
                                    f"{member.shape[0]}; the file is truncated")
                yield start, np.frombuffer(raw, dtype=member.dtype).reshape(count, *row_shape)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise DataError(f"{member.path}: cannot read {member.key!r} ({error}); the file is "
                        "truncated or corrupt") from None


def require_array(where: str, shape: tuple[int, ...], dtype: np.dtype,
                  expected_shape: tuple[int | None, ...], expected_dtype: str) -> None:
    """DataError unless shape matches (None = any length) and dtype is `expected_dtype`."""
    fits = len(shape) == len(expected_shape) and all(
        e is None or s == e for s, e in zip(shape, expected_shape))
    if not fits or np.dtype(dtype) != np.dtype(expected_dtype):
        wanted = "(" + ", ".join("N" if e is None else str(e) for e in expected_shape) + ")"
        raise DataError(f"{where}: shape {tuple(shape)} {np.dtype(dtype)}, expected {wanted} "
                        f"{expected_dtype}")


def stamp_details(stamp: dict) -> dict:
    """What a run record says about the verified source file."""
    return {"file": stamp["path"], "file_bytes": stamp["bytes"],
            "checksum": f"{stamp['algorithm']}:{stamp['digest']}" if stamp["digest"] else None,
            "matches_reference": stamp["matches_reference"]}


def cached_official(name: str, path: Path, check: FileCheck | None, cache_dir: Path,
                    shape: tuple[int, ...], fill: Callable[[np.ndarray], None]
                    ) -> tuple[np.memmap, dict]:
    """Verify a compressed official file strictly, then memory-map its uint8 .npy cache."""
    stamp = verify_source(path, check, strict=True, cache_dir=cache_dir)
    cache_path = cache_dir / f"{name}-{'x'.join(map(str, shape))}.npy"
    array = cached_array(cache_path, shape, np.dtype(np.uint8), stamp, fill)
    return array, {**stamp_details(stamp), "cache": str(cache_path)}


def open_hdf5(path: Path):
    """An h5py File, with a damaged or truncated file reported as a DataError."""
    import h5py  # only the official loaders need it

    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error}); is it truncated?") from None


def hdf5_dataset(handle, key: str):
    if key not in handle:
        raise DataError(f"{handle.filename}: no dataset {key!r} (it holds {list(handle)})")
    return handle[key]
