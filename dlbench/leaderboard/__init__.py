"""The leaderboard and the paper report, built from run records through the results store (`dlbench.results`).
The arithmetic in `stats`, what is shown in `tables` (settings, studies, rankings) at the `scale` each study was
made, drawing in `figures`, shared wording in `render`, Markdown in `markdown`, HTML in `page`, the build in
`build`, the directory both may write in `output`; the paper's claims in `paper_claims` (on the framework of
`claims`), judged by the rules of `verdicts` and written by `report`."""
from __future__ import annotations

from dlbench.leaderboard.commands import add_commands

__all__ = ["add_commands"]
