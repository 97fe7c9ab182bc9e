"""What the sweep tests read back from an output directory."""
from __future__ import annotations

from pathlib import Path


def finished_records(out: Path) -> dict[str, dict]:
    """{run directory name: its record, read and checked}."""
    from dlbench import records

    return {path.name: records.read_record(path) for path in sorted(out.iterdir())
            if path.is_dir() and (path / records.RECORD_FILE).is_file()}


def leftovers(out: Path) -> list[str]:
    """What else is in `out`: partial run directories, lock files."""
    from dlbench import records

    return sorted(path.name for path in out.iterdir() if not (path / records.RECORD_FILE).is_file())

