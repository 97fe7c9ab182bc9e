"""`dlbench leaderboard RESULT_DIRS... --out leaderboard/`: README.md, index.html, figures/*.png and
records/<run id>.json (byte-for-byte copies of the records it was built from, so it stands alone)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dlbench import atomic_write
from dlbench.errors import DlbenchError
from dlbench.leaderboard import figures, tables
from dlbench.leaderboard.render import LeaderboardContent, html_page, markdown
from dlbench.records import RECORD_FILE
from dlbench.results import HEADLINE_METRICS, Results

FIGURES_DIR, RECORDS_DIR = "figures", "records"


@dataclass(frozen=True)
class BuiltLeaderboard:
    written: list[Path]
    warnings: list[str]
    content: LeaderboardContent


def _copy_record(run_dir: Path, target: Path) -> None:
    source = run_dir / RECORD_FILE
    atomic_write(target, lambda stream: stream.write(source.read_bytes()))


def build_leaderboard(result_dirs: Sequence[str | Path], out_dir: str | Path, rebuild: bool = False,
                      embed_figures: bool = False) -> BuiltLeaderboard:
    """Write the leaderboard of every record under `result_dirs` into `out_dir`. index.html links the figures
    beside it (each PNG is stored once), or with `embed_figures` carries them inside, as a page that travels alone."""
    out_dir = Path(out_dir)
    with Results(result_dirs, rebuild=rebuild) as results:
        metrics = [*HEADLINE_METRICS, *([tables.CONVERGENCE_SCORE] if tables.CONVERGENCE_SCORE in results.score_names
                                        else [])]
        solutions = results.solutions(metrics=metrics)
        warnings = list(results.warnings)
    rows = tables.setting_rows(solutions, metrics)
    runs = {s.run_id: (s.model, s.run_dir) for s in solutions}
    written: list[Path] = []
    record_links = {}
    for run_id, (_, run_dir) in runs.items():
        # A run directory holding its record alone: the leaderboard regenerates from leaderboard/records.
        target = out_dir / RECORDS_DIR / run_id / RECORD_FILE
        _copy_record(run_dir, target)
        written.append(target)
        record_links[run_id] = f"{RECORDS_DIR}/{run_id}/{RECORD_FILE}"

    figures_dir = out_dir / FIGURES_DIR
    studies = tables.studies(rows)
    study_figures = {study.slug: figures.study_figures(study, figures_dir) for study in studies}
    written += [path for drawn in study_figures.values() for path in drawn.values()]
    run_figures = []
    for run_id, (model, run_dir) in runs.items():
        try:
            drawn = figures.registered_plots(model, run_id, run_dir, figures_dir)
        except DlbenchError as exc:  # e.g. a record of an older schema the plugin's plot cannot read
            warnings.append(f"{run_dir}: its model's plot was not drawn ({str(exc).splitlines()[0]})")
            continue
        if drawn:
            run_figures.append((run_id, drawn))
            written += drawn

    content = LeaderboardContent(
        result_dirs=[Path(d) for d in result_dirs], record_count=len(runs), solution_count=len(solutions),
        rankings=tables.rankings(rows), studies=studies, study_figures=study_figures, run_figures=run_figures,
        record_links=record_links, warnings=warnings)
    pages = (("README.md", markdown(content, out_dir)), ("index.html", html_page(content, out_dir, embed_figures)))
    for name, text in pages:
        atomic_write(out_dir / name, lambda stream, text=text: stream.write(text.encode()))
        written.append(out_dir / name)
    _remove_stale(out_dir, written)
    return BuiltLeaderboard(written, warnings, content)


def _remove_stale(out_dir: Path, written: Sequence[Path]) -> None:
    """Remove figures and record copies that this build did not write (an earlier build's, over other
    records), so the directory holds exactly the records it was built from."""
    keep = {Path(p).resolve() for p in written}
    for path in sorted((out_dir / FIGURES_DIR).glob("*")):
        if path.is_file() and path.suffix == ".png" and path.resolve() not in keep:
            os.remove(path)
        elif path.is_dir() and path.name.startswith(".plot-"):
            shutil.rmtree(path, ignore_errors=True)  # left by an interrupted build
    for copy in sorted((out_dir / RECORDS_DIR).glob("*")):
        if copy.is_dir() and (copy / RECORD_FILE).resolve() not in keep:
            shutil.rmtree(copy)
        elif copy.is_file() and copy.suffix == ".json":  # a copy in the flat layout of earlier builds
            os.remove(copy)
