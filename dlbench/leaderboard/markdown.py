"""The leaderboard as Markdown (README.md): the scale banner, then per dataset and source its rankings and
figures."""
from __future__ import annotations

from pathlib import Path

from dlbench.leaderboard import render
from dlbench.leaderboard.figures import Figure
from dlbench.leaderboard.output import README_TITLE
from dlbench.leaderboard.render import LeaderboardContent
from dlbench.leaderboard.tables import Ranking


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _table(headers: list[str], rows: list[list[str]], numeric: tuple[str, ...] = ()) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if h in numeric else "---" for h in headers) + "|",
            *("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows), ""]


def _ranking(ranking: Ranking, content: LeaderboardContent) -> list[str]:
    rows = []
    for rank, row in zip(ranking.ranks, ranking.rows):
        runs = ", ".join(f"[{run}]({content.record_links[run]})" if run in content.record_links else run
                         for run in row.run_ids)
        rows.append([*render.row_cells(ranking, rank, row), runs, render.packages_of(ranking, row),
                     render.fit_hashes_of(ranking, row)])
    return [f"### {_md(render.metric_heading(ranking))}", "", *render.ranking_caption(ranking), "",
            *_table(render.HEADERS, rows, ("rank", "n"))]


def _figure(figure: Figure, out_dir: Path) -> list[str]:
    link = figure.path.relative_to(out_dir).as_posix()
    return [_md(render.figure_caption(figure)), "", f"![{figure.kind}]({link})", ""]


def _contents(content: LeaderboardContent) -> list[str]:
    titles = [render.section_title(dataset, source) for dataset, source, _, _ in render.sections(content)]
    lines = ["## Contents", "", *(f"- [{title}](#{render.anchor(title)})" for title in titles)]
    if content.run_figures:
        lines.append("- [Figures of single runs](#figures-of-single-runs)")
    return [*lines, ""]


def _section(dataset: str, source: str, rankings: list[Ranking], studies: list, content: LeaderboardContent,
             out_dir: Path) -> list[str]:
    lines = [f"## {render.section_title(dataset, source)}", ""]
    for ranking in rankings:
        lines += _ranking(ranking, content)
        if ranking.slug in content.ranking_figures:
            lines += _figure(content.ranking_figures[ranking.slug], out_dir)
    for study in studies:
        if content.study_figures.get(study.slug):
            lines += [f"### Figures: {_md(study.title)}", ""]
            for figure in content.study_figures[study.slug]:
                lines += _figure(figure, out_dir)
    return lines


def markdown(content: LeaderboardContent, out_dir: Path) -> str:
    claims = render.CLAIMS_LINK.replace("paper.md", "[paper.md](paper.md)", 1)
    lines = [README_TITLE, "",
             f"Built from {content.record_count} run records ({content.solution_count} solutions) in "
             f"{', '.join(f'`{d}`' for d in content.result_dirs)}. {claims}", "",
             "## Scale", "", render.BANNER_INTRO, "",
             *_table(render.BANNER_HEADERS, render.banner_rows(content), ("runs",)), render.HOW_TO_READ, ""]
    if content.warnings:
        lines += ["Warnings (records not used as they are, figures not drawn):", "",
                  *(f"- {_md(w)}" for w in content.warnings), ""]
    lines += _contents(content)
    for dataset, source, rankings, studies in render.sections(content):
        lines += _section(dataset, source, rankings, studies, content, out_dir)
    if content.run_figures:
        lines += ["## Figures of single runs", ""]
        for run_id, paths, scale in content.run_figures:
            lines += [f"### {run_id}", "", f"Drawn by its model's plugin; scale: {_md(scale)}.", "",
                      *(f"![{p.name}]({p.relative_to(out_dir).as_posix()})" for p in paths), ""]
    return "\n".join(lines).rstrip() + "\n"
