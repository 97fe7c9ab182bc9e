"""Where `dlbench leaderboard` and `dlbench report paper` write: a directory that is missing, empty, or one they
wrote. They overwrite README.md, index.html and paper.md and prune figures/ and records/, so a directory holding
anyone else's files there (a project's README.md, a results directory, a paper's figures) is refused before
anything is read or written. Their pages are recognised by the title each opens with; other files are left alone."""
from __future__ import annotations

from pathlib import Path

from dlbench.errors import ConfigError

README_TITLE = "# dlbench leaderboard"
HTML_TITLE = "<title>dlbench leaderboard</title>"
PAPER_TITLE = "# The paper's claims, tested on these records"
PAGE_TITLES = {"README.md": README_TITLE, "index.html": HTML_TITLE, "paper.md": PAPER_TITLE}
PRUNED_DIRS = ("figures", "records")
OPENING_LINES = 4  # index.html's title follows its doctype and meta lines
EXPECTED = ("expected a missing or empty directory, or one that 'dlbench leaderboard' or 'dlbench report paper' "
            "wrote")


def _is_generated(page: Path, title: str) -> bool:
    with open(page, "rb") as stream:
        opening = stream.read(4096).decode(errors="replace").splitlines()[:OPENING_LINES]
    return any(line.startswith(title) for line in opening)


def check_out_dir(out_dir: Path) -> None:
    """Refuse (ConfigError) an --out where the build would overwrite or prune files that dlbench did not write."""
    shown = f"--out {str(out_dir)!r}"
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{shown} is a file; {EXPECTED}")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    for name in (*PAGE_TITLES, *PRUNED_DIRS):
        path = out_dir / name
        ours = path.is_file() and _is_generated(path, PAGE_TITLES[name]) if name in PAGE_TITLES else path.is_dir()
        if path.exists() and not ours:
            raise ConfigError(f"{shown} holds {name}, which dlbench did not write; {EXPECTED}")
    if not any((out_dir / name).exists() for name in PAGE_TITLES):
        raise ConfigError(f"{shown} holds files dlbench did not write and no page of a leaderboard; {EXPECTED}")
