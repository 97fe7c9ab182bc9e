"""The one way dlbench writes a file: to a temporary name beside it, flushed to disk, then renamed.

A reader never sees a half-written file, and an interrupted or failed write (a full disk included)
leaves the previous file intact and no temporary behind.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from dlbench.errors import ResourceError

# mkstemp creates files readable by their owner only; a finished file gets the permissions open() would give it.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` for the block to write (by any means, e.g. a memory map); when the block
    succeeds it is fsynced and renamed onto `path`, when it fails it is removed. A disk that fills up on the way is a
    ResourceError naming the file and the file system."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        temporary = Path(temp_name)
        try:
            yield temporary
            with open(temporary, "rb+") as stream:
                os.fsync(stream.fileno())
            os.chmod(temporary, FILE_MODE)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except (OSError, RuntimeError) as exc:
        full = _no_space_error(exc)
        if full is None:
            raise
        raise ResourceError(f"{path}: {full.strerror or 'no space left'} (the file system at {_mount_point(path)}, "
                            f"{_free_space(path)} free without this file); free some space there or choose another "
                            "location") from exc


def _no_space_error(exc: BaseException) -> OSError | None:
    """The no-space (or quota) OSError behind `exc`: itself, or the one a writer such as torch.save wrapped in its own
    error ("unexpected pos")."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _mount_point(path: Path) -> Path:
    point = path.absolute().parent
    while not point.exists() or not os.path.ismount(point):
        point = point.parent
    return point


def _free_space(path: Path) -> str:
    from dlbench.resources import byte_size

    try:
        return byte_size(shutil.disk_usage(_mount_point(path)).free)
    except OSError:
        return "unknown space"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call write(binary stream) on a temporary file beside `path`, then fsync and rename it into place."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        write(stream)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda stream: stream.write(text.encode()))


def atomic_write_json(path: str | os.PathLike, payload: Any) -> None:
    """Strict JSON (no NaN), indented one space, with a final newline."""
    atomic_write_text(path, json.dumps(payload, indent=1, allow_nan=False) + "\n")
