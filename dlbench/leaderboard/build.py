"""`dlbench leaderboard RESULT_DIRS... --out leaderboard/`: README.md, index.html, figures/*.png and
records/<run id>/record.json (byte-for-byte copies of the records it was built from, so it stands alone)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dlbench import atomic_write
from dlbench.errors import DlbenchError
from dlbench.leaderboard import figures
from dlbench.leaderboard.markdown import markdown
from dlbench.leaderboard.output import check_out_dir
from dlbench.leaderboard.page import html_page
from dlbench.leaderboard.render import LeaderboardContent
from dlbench.leaderboard.tables import Ranking, Study, rankings, setting_rows, studies
from dlbench.records import RECORD_FILE
from dlbench.results import HEADLINE_METRICS, Results, RunInfo

FIGURES_DIR, RECORDS_DIR = "figures", "records"


@dataclass(frozen=True)
class BuiltLeaderboard:
    written: list[Path]
    warnings: list[str]
    content: LeaderboardContent


def _copy_records(runs: dict[str, RunInfo], out_dir: Path) -> dict[str, Path]:
    """Each run's record copied as RECORDS/<run id>/record.json: the leaderboard regenerates from those alone."""
    copies = {}
    for run_id, run in runs.items():
        target = out_dir / RECORDS_DIR / run_id / RECORD_FILE
        source = run.run_dir / RECORD_FILE
        atomic_write(target, lambda stream, source=source: stream.write(source.read_bytes()))
        copies[run_id] = target
    return copies


def _ranking_figures(ranked: Sequence[Ranking], figures_dir: Path) -> dict[str, figures.Figure]:
    drawn = {}
    for ranking in ranked:
        if ranking.compares_models:
            figure = figures.distributions(ranking, figures_dir / f"{ranking.slug}-distribution.png")
            drawn[ranking.slug] = figure
    return drawn


def _run_figures(all_studies: Sequence[Study], figures_dir: Path,
                 warnings: list[str]) -> list[tuple[str, list[Path], str]]:
    """Each run's own figures, drawn by its model's plugin, with the scale of the run's study."""
    found, seen = [], set()
    for study in all_studies:
        for run in study.runs:
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            try:
                drawn = figures.registered_plots(run.model, run.run_id, run.run_dir, figures_dir)
            except DlbenchError as exc:  # e.g. a record of an older schema the plugin's plot cannot read
                warnings.append(f"{run.run_dir}: its model's plot was not drawn ({str(exc).splitlines()[0]})")
                continue
            if drawn:
                found.append((run.run_id, drawn, study.scale.short()))
    return found


def build_leaderboard(result_dirs: Sequence[str | Path], out_dir: str | Path, rebuild: bool = False,
                      embed_figures: bool = False, include_unverified: bool = False) -> BuiltLeaderboard:
    """Write the leaderboard of every record under `result_dirs` into `out_dir`. index.html links the figures
    beside it (each PNG is stored once), or with `embed_figures` carries them inside, as a page that travels alone."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    with Results(result_dirs, rebuild=rebuild, include_unverified=include_unverified) as results:
        rows = setting_rows(results, list(HEADLINE_METRICS))
        runs = results.runs()
        warnings = list(results.warnings)
    all_studies = studies(rows, runs)
    ranked = rankings(all_studies)
    copies = _copy_records(runs, out_dir)
    figures_dir = out_dir / FIGURES_DIR
    study_figures = {study.slug: figures.study_figures(study, figures_dir) for study in all_studies}
    ranking_figures = {slug: figure for slug, figure in _ranking_figures(ranked, figures_dir).items() if figure}
    run_figures = _run_figures(all_studies, figures_dir, warnings)
    content = LeaderboardContent(
        result_dirs=[Path(d) for d in result_dirs], record_count=len(runs), solution_count=sum(r.count for r in rows),
        studies=all_studies, rankings=ranked, study_figures=study_figures, ranking_figures=ranking_figures,
        run_figures=run_figures, record_links={run: f"{RECORDS_DIR}/{run}/{RECORD_FILE}" for run in copies},
        warnings=warnings)
    written = [*copies.values(), *(f.path for drawn in study_figures.values() for f in drawn),
               *(f.path for f in ranking_figures.values()), *(p for _, paths, _ in run_figures for p in paths)]
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
