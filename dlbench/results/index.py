"""The SQLite index of one results directory, `RESULT_DIR/.dlbench-index.sqlite`: a fixed set of long tables (a
record's run fields; its solutions; each solution's axis labels; each solution's scores as (record, solution,
score, value) rows), so no record, whatever its axes or its thousands of scores, changes the tables' shape.

The index is updated on demand: a record is re-read when the sha256 of its bytes differs from the one indexed
(size and time stamps prove nothing), a removed record's rows go, and every update is one transaction (a first
build or a rebuild is written to a temporary file and renamed), so a crash never leaves a half-built index. A
record that cannot be trusted is refused with a one-line warning naming its file, and the others are still
indexed. The file gets the permissions of the records beside it; an index that cannot be opened or updated is
rebuilt, in memory for this command only where the directory cannot take a new one."""
from __future__ import annotations

import functools
import hashlib
import json
import operator
import os
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from dlbench.errors import ConfigError, RecordError
from dlbench.results.reading import RECORD_FILE, RUN_COLUMNS, RecordEntry, record_entry

INDEX_FILE = ".dlbench-index.sqlite"
# Bumped when the index layout changes; an index of another version is rebuilt from the records.
INDEX_VERSION = "4"

_SCHEMA_SQL = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, identity TEXT NOT NULL,
                      indexed INTEGER NOT NULL, problem TEXT, {', '.join(RUN_COLUMNS)}, verified INTEGER, axes TEXT,
                      replicate_axes TEXT, facts TEXT);
CREATE TABLE solutions (record INTEGER NOT NULL, solution INTEGER NOT NULL, failure TEXT,
                        PRIMARY KEY (record, solution)) WITHOUT ROWID;
CREATE TABLE labels (record INTEGER NOT NULL, solution INTEGER NOT NULL, axis TEXT NOT NULL, value,
                     PRIMARY KEY (record, solution, axis)) WITHOUT ROWID;
CREATE TABLE scores (record INTEGER NOT NULL, solution INTEGER NOT NULL, score TEXT NOT NULL, value REAL NOT NULL,
                     PRIMARY KEY (record, solution, score)) WITHOUT ROWID;
"""
_RECORD_SQL = (f"INSERT INTO records (path, identity, indexed, {', '.join(RUN_COLUMNS)}, verified, axes, "
               f"replicate_axes, facts) VALUES ({', '.join('?' * (len(RUN_COLUMNS) + 7))})")


def record_files(result_dir: Path) -> dict[str, Path]:
    """Relative path → path of every finished record under `result_dir`."""
    found = {}
    for path in sorted(result_dir.rglob(RECORD_FILE)):
        relative = path.relative_to(result_dir)
        if any(part.endswith(".partial") for part in relative.parts[:-1]) or not path.is_file():
            continue  # a run still being built
        found[relative.as_posix()] = path
    return found


def _contents(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes and their sha256 (None and the reason as identity where it cannot be read)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"
    return data, hashlib.sha256(data).hexdigest()


def _connect(path: Path | str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit.
    return sqlite3.connect(str(path), isolation_level=None, timeout=30)


def _create_schema(connection: sqlite3.Connection) -> None:
    connection.executescript(_SCHEMA_SQL)
    connection.execute("INSERT INTO meta VALUES ('version', ?)", (INDEX_VERSION,))


def _delete(connection: sqlite3.Connection, path: str) -> None:
    row = connection.execute("SELECT id FROM records WHERE path = ?", (path,)).fetchone()
    if row is None:
        return
    for table in ("scores", "labels", "solutions"):
        connection.execute(f"DELETE FROM {table} WHERE record = ?", row)
    connection.execute("DELETE FROM records WHERE id = ?", row)


def _insert(connection: sqlite3.Connection, path: str, identity: str, entry: RecordEntry) -> None:
    record = connection.execute(_RECORD_SQL, (
        path, identity, 1, *(getattr(entry.run, c) for c in RUN_COLUMNS), int(entry.verified),
        json.dumps(entry.axes), json.dumps(entry.replicate_axes), json.dumps(entry.facts))).lastrowid
    connection.executemany("INSERT INTO solutions VALUES (?, ?, ?)",
                           ((record, solution, failure) for solution, failure in enumerate(entry.failures)))
    strides = [1]
    for labels in reversed(list(entry.axes.values())[1:]):
        strides.insert(0, strides[0] * len(labels))
    connection.executemany("INSERT INTO labels VALUES (?, ?, ?, ?)", (
        (record, solution, axis, labels[solution // stride % len(labels)])
        for solution in range(entry.num_solutions) for (axis, labels), stride in zip(entry.axes.items(), strides)))
    connection.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)", (
        (record, solution, name, float(value)) for name, values in entry.scores.items()
        for solution, value in enumerate(values) if value == value))  # NaN (unknown) is left out


def _sync(connection: sqlite3.Connection, result_dir: Path, found: dict[str, Path]) -> None:
    """Bring the index in line with the records found, in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        known = dict(connection.execute("SELECT path, identity FROM records"))
        for path in sorted(known.keys() - found.keys()):
            _delete(connection, path)
        for path, file in found.items():
            data, identity = _contents(file)
            if known.get(path) == identity:
                continue
            _delete(connection, path)
            try:
                entry = record_entry(result_dir / path, data)
            except RecordError as exc:
                connection.execute("INSERT INTO records (path, identity, indexed, problem) VALUES (?, ?, 0, ?)",
                                   (path, identity, str(exc)))
                continue
            _insert(connection, path, identity, entry)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _index_version(connection: sqlite3.Connection) -> str | None:
    row = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return row[0] if row else None


def _record_mode(found: dict[str, Path]) -> int:
    """The permissions every record beside the index shares (an index is readable by whoever can read them all);
    the umask's where there is no record."""
    from dlbench.atomic import FILE_MODE

    modes = []
    for path in found.values():
        try:
            modes.append(path.stat().st_mode & 0o666)
        except OSError:
            continue
    return functools.reduce(operator.and_, modes) if modes else FILE_MODE


def _reused(index_path: Path, result_dir: Path, found: dict[str, Path],
            notices: list[str]) -> sqlite3.Connection | None:
    """The existing index brought up to date; None where there is none, it is of another version, or it cannot be
    opened or updated (said in `notices`)."""
    if not os.path.lexists(index_path):
        return None
    connection = None
    try:
        connection = _connect(index_path)
        if _index_version(connection) == INDEX_VERSION:
            _sync(connection, result_dir, found)
            return connection
    except sqlite3.Error as exc:
        notices.append(f"{index_path}: cannot be used ({str(exc).splitlines()[0]}); rebuilt from the records")
    except BaseException:
        if connection is not None:
            connection.close()
        raise
    if connection is not None:
        connection.close()
    return None


def _built_file(result_dir: Path, found: dict[str, Path], mode: int) -> sqlite3.Connection:
    """Build the whole index in a temporary file with `mode` and rename it into place."""
    handle, temp_name = tempfile.mkstemp(dir=result_dir, prefix=f".{INDEX_FILE}.", suffix=".tmp")
    os.close(handle)
    try:
        with closing(_connect(temp_name)) as connection:
            _create_schema(connection)
            _sync(connection, result_dir, found)
        os.chmod(temp_name, mode)
        os.replace(temp_name, result_dir / INDEX_FILE)
    finally:
        Path(temp_name).unlink(missing_ok=True)
    return _connect(result_dir / INDEX_FILE)


def _built(result_dir: Path, found: dict[str, Path], notices: list[str]) -> sqlite3.Connection:
    """A fresh index: a file beside the records, or in memory for this process where none can be written."""
    try:
        return _built_file(result_dir, found, _record_mode(found))
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        notices.append(f"{result_dir}: no index written ({reason}); indexed its records in memory for this command "
                       "only")
    connection = _connect(":memory:")
    _create_schema(connection)
    _sync(connection, result_dir, found)
    return connection


def _match_mode(index_path: Path, mode: int) -> None:
    """Give a reused index the records' permissions (they may have changed); an index not ours is left alone."""
    try:
        if index_path.stat().st_mode & 0o777 != mode:
            os.chmod(index_path, mode)
    except OSError:
        pass


def open_index(result_dir: str | Path, rebuild: bool = False) -> tuple[sqlite3.Connection, list[str]]:
    """The up-to-date index of `result_dir` (built, updated or, with `rebuild`, built afresh) and the warnings
    about records it refused and about the index itself, one line each."""
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise ConfigError(f"results directory {str(result_dir)!r} is not accepted; expected a directory "
                          "holding run directories")
    found = record_files(result_dir)
    notices: list[str] = []
    connection = None if rebuild else _reused(result_dir / INDEX_FILE, result_dir, found, notices)
    if connection is None:
        connection = _built(result_dir, found, notices)
    else:
        _match_mode(result_dir / INDEX_FILE, _record_mode(found))
    problems = [row[0] for row in connection.execute(
        "SELECT problem FROM records WHERE problem IS NOT NULL ORDER BY path")]
    return connection, notices + problems
