"""`dlbench` with the sweep command, until the plugin hook adds it; also a script for sweeps in subprocesses."""
from __future__ import annotations

import sys
from pathlib import Path

from dlbench import cli
from dlbench.plugins import Plugins
from dlbench.sweep import add_commands

TINY_STUDY = """
dataset.name = "linear_gaussian"
linear_gaussian.n = 12
linear_gaussian.s = 3
linear_gaussian.seed = 3
model.name = "linear_gaussian_vae"
linear_gaussian_vae.num_latent = 4
linear_gaussian_vae.betas = [1, 4]
linear_gaussian_vae.lambdas = [0, 2]
linear_gaussian_vae.solvers = ["fixed_point"]
linear_gaussian_vae.num_starts = 3
linear_gaussian_vae.max_half_steps = 600
"""


def main(argv: list[str]) -> int:
    """cli.main with `sweep` among its commands (added here only where no plugin added it already)."""
    original = Plugins.add_commands

    def add_with_sweep(plugins, subparsers):
        original(plugins, subparsers)
        if "sweep" not in subparsers.choices:
            add_commands(subparsers)

    Plugins.add_commands = add_with_sweep
    try:
        return cli.main(argv)
    finally:
        Plugins.add_commands = original


def finished_records(out: Path) -> dict[str, dict]:
    """{run directory name: its record, read and checked}."""
    from dlbench import records

    return {path.name: records.read_record(path) for path in sorted(out.iterdir())
            if path.is_dir() and (path / records.RECORD_FILE).is_file()}


def leftovers(out: Path) -> list[str]:
    """What else is in `out`: partial run directories, lock files."""
    from dlbench import records

    return sorted(path.name for path in out.iterdir() if not (path / records.RECORD_FILE).is_file())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
