"""The leaderboard and the paper report, built from run records through the results store
(`dlbench.results`). Pure arithmetic in `stats`, what is shown in `tables`, drawing in `figures`,
Markdown and HTML in `render`, the build in `build`, the paper's claims in `report`."""
from __future__ import annotations

from dlbench.leaderboard.commands import add_commands

__all__ = ["add_commands"]
