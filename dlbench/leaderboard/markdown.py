"""The leaderboard as Markdown (README.md): the scale banner, then per dataset and source its rankings and
figures."""
from __future__ import annotations

from pathlib import Path

from dlbench.leaderboard.figures import Figure
from dlbench.leaderboard.render import (
    BANNER_HEADERS,
    BANNER_INTRO,
    CLAIMS_LINK,
    HEADERS,
    HOW_TO_READ,
    LeaderboardContent,
    anchor,
    banner_rows,
    figure_caption,
    fit_hashes_of,
    metric_heading,
    packages_of,
    ranking_caption,
    row_cells,
    section_title,
    sections,
)
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
        rows.append([*row_cells(ranking, rank, row), runs, packages_of(ranking, row), fit_hashes_of(ranking, row)])
    return [f"### {_md(metric_heading(ranking))}", "", *ranking_caption(ranking), "",
            *_table(HEADERS, rows, ("rank", "n"))]


def _figure(figure: Figure, out_dir: Path) -> list[str]:
    return [_md(figure_caption(figure)), "", f"![{figure.kind}]({figure.path.relative_to(out_dir).as_posix()})", ""]


def markdown(content: LeaderboardContent, out_dir: Path) -> str:
    lines = ["# dlbench leaderboard", "",
             f"Built from {content.record_count} run records ({content.solution_count} solutions) in "
             f"{', '.join(f'`{d}`' for d in content.result_dirs)}. "
             f"{CLAIMS_LINK.replace('paper.md', '[paper.md](paper.md)', 1)}", "",
             "## Scale", "", BANNER_INTRO, "", *_table(BANNER_HEADERS, banner_rows(content), ("runs",)),
             HOW_TO_READ, ""]
    if content.warnings:
        lines += ["Warnings (records not used as they are, figures not drawn):", "",
                  *(f"- {_md(w)}" for w in content.warnings), ""]
    parts = sections(content)
    lines += ["## Contents", "",
              *(f"- [{section_title(d, s)}](#{anchor(section_title(d, s))})" for d, s, _, _ in parts)]
    lines += ["- [Figures of single runs](#figures-of-single-runs)"] if content.run_figures else []
    lines.append("")
    for dataset, source, tables, studies in parts:
        lines += [f"## {section_title(dataset, source)}", ""]
        for ranking in tables:
            lines += _ranking(ranking, content)
            if ranking.slug in content.ranking_figures:
                lines += _figure(content.ranking_figures[ranking.slug], out_dir)
        for study in studies:
            if content.study_figures.get(study.slug):
                lines += [f"### Figures: {_md(study.title)}", ""]
                for figure in content.study_figures[study.slug]:
                    lines += _figure(figure, out_dir)
    if content.run_figures:
        lines += ["## Figures of single runs", ""]
        for run_id, paths, scale in content.run_figures:
            lines += [f"### {run_id}", "", f"Drawn by its model's plugin; scale: {_md(scale)}.", "",
                      *(f"![{p.name}]({p.relative_to(out_dir).as_posix()})" for p in paths), ""]
    return "\n".join(lines).rstrip() + "\n"
