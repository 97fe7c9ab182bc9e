"""Run locks: one process at a time works on a run (its fit, its record), across processes and hosts.

A lock is a file created atomically (O_CREAT | O_EXCL) beside the run directory, holding its owner's
host, pid and start time; a heartbeat thread touches it every HEARTBEAT_SECONDS. It is taken over when
its owner is gone: at once when the owner's pid no longer exists on this host, and after
EXPIRY_SECONDS without a heartbeat otherwise (an owner on another host, or a hung one). Taking over
happens under a short-lived guard file, so two processes never both take over one stale lock.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import threading
import time
from pathlib import Path

from dlbench.errors import RunLockedError

HEARTBEAT_SECONDS = 30.0
EXPIRY_SECONDS = 600.0  # a lock not touched for this long belongs to a dead or hung owner
GUARD_EXPIRY_SECONDS = 60.0  # a take-over takes milliseconds; an older guard was left by a crash
WAIT_POLL_SECONDS = 0.5


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


class RunLock:
    """`with RunLock(path, what="run X"):` holds the lock for the block; a held lock raises RunLockedError naming its
    owner, or is waited for when `wait` is true."""

    def __init__(self, path: str | os.PathLike, what: str, *, wait: bool = False,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS, expiry_seconds: float = EXPIRY_SECONDS):
        self.path = Path(path)
        self.what = what
        self.wait = wait
        self.heartbeat_seconds = heartbeat_seconds
        self.expiry_seconds = expiry_seconds
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        while not self._try_create():
            holder = self._read_holder()
            if holder is None and not self.path.exists():
                continue  # released in between
            if self._is_stale(holder):
                self._take_over(holder)
                continue
            if not self.wait:
                raise RunLockedError(self._held_message(holder))
            time.sleep(WAIT_POLL_SECONDS)
        self._heartbeat = threading.Thread(target=self._beat, name=f"heartbeat {self.path.name}", daemon=True)
        self._heartbeat.start()

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if self._read_holder() == self.owner:
            self.path.unlink(missing_ok=True)

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as stream:
            json.dump(self.owner, stream)
            stream.flush()
            os.fsync(stream.fileno())
        return True

    def _read_holder(self) -> dict | None:
        """The lock's owner; None when the file is gone or still being written by its creator."""
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _is_stale(self, holder: dict | None) -> bool:
        if holder is None:  # unreadable: its creator died between creating and writing it, or is writing it now
            return self._age() > GUARD_EXPIRY_SECONDS
        gone = holder.get("host") == self.owner["host"] and not _pid_exists(int(holder.get("pid", -1)))
        return gone or self._age() > self.expiry_seconds

    def _take_over(self, stale_holder: dict | None) -> None:
        guard = self.path.with_name(self.path.name + ".takeover")
        try:
            os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            if time.time() - guard.stat().st_mtime > GUARD_EXPIRY_SECONDS:
                guard.unlink(missing_ok=True)
            time.sleep(0.05)
            return
        try:
            if self._read_holder() == stale_holder:  # nobody took it over in between
                self.path.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def _held_message(self, holder: dict | None) -> str:
        if holder is None:
            return f"{self.what} is being claimed by another process right now ({self.path}); try again or use --wait"
        return (f"{self.what} is held by pid {holder.get('pid')} on {holder.get('host')} since "
                f"{holder.get('started')} (lock {self.path}); wait for it with --wait, or stop that process")
