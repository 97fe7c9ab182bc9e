"""The leaderboard as one static HTML page (index.html): inline CSS, a small inline script that sorts a table by
the clicked column (numbers as numbers, settings by their values), figures linked from figures/ beside it or
embedded as data URIs; nothing fetched from elsewhere."""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from dlbench.leaderboard.figures import Figure
from dlbench.leaderboard.output import HTML_TITLE
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
from dlbench.leaderboard.tables import Ranking, SettingRow, is_number

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.runs { font-size: 12px; max-width: 32em; word-break: break-all; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
.scale { background: #fff8e6; border: 1px solid #e0c070; padding: 0.2em 1em 0.6em; }
.caption { font-size: 13px; color: #444; margin: 0.2em 0; }
.warning { color: #8a4b00; } .source { font-weight: 600; }
"""

SCRIPT = """
function compareKeys(x, y) {
  if (Array.isArray(x) && Array.isArray(y)) {
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const order = compareKeys(x[i], y[i]);
      if (order !== 0) return order;
    }
    return x.length - y.length;
  }
  if (typeof x === "number" && typeof y === "number") return x - y;
  if (typeof x === "number" || typeof y === "number") return typeof x === "number" ? -1 : 1;
  return String(x).localeCompare(String(y));
}
function cellKey(row, column, type) {
  const cell = row.cells[column];
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  if (type === "setting") return JSON.parse(raw);
  if (type !== "number") return raw;
  const value = parseFloat(raw);
  return isNaN(value) ? null : value;
}
function sortTable(header) {
  const table = header.closest("table");
  const column = Array.prototype.indexOf.call(header.parentNode.children, header);
  const type = header.dataset.type;
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort(function (a, b) {
    const x = cellKey(a, column, type), y = cellKey(b, column, type);
    if (x === null || y === null) return (x === null) - (y === null);  // unknown values last
    const order = compareKeys(x, y);
    return ascending ? order : -order;
  });
  rows.forEach(function (row) { body.appendChild(row); });
  table.querySelectorAll("th").forEach(function (th) { th.removeAttribute("aria-sort"); });
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
}
document.querySelectorAll("table.sortable th").forEach(function (header) {
  header.addEventListener("click", function () { sortTable(header); });
});
"""

COLUMN_TYPES = {"rank": "number", "mean ± std": "number", "n": "number", "steps": "number", "setting": "setting"}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _figure(path: Path, caption: str, out_dir: Path, embed: bool) -> str:
    """A figure linked from the page's folder (figures/ beside index.html), or embedded as a data URI."""
    source = _data_uri(path) if embed else html.escape(Path(path).relative_to(out_dir).as_posix())
    return (f'<figure><img alt="{html.escape(caption)}" src="{source}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _study_figure(figure: Figure, out_dir: Path, embed: bool) -> str:
    return _figure(figure.path, figure_caption(figure), out_dir, embed)


def _number_key(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def setting_key(row: SettingRow) -> str:
    """The setting as a JSON list (axis name, value, ...) the page's script compares element by element."""
    return json.dumps([part for name, value in row.setting for part in (name, value if is_number(value)
                                                                       else str(value))])


def _td(text: str, sort_key: str | None = None, css: str | None = None) -> str:
    attributes = (f' class="{css}"' if css else "") + (f' data-sort="{html.escape(sort_key)}"' if sort_key is not None
                                                        else "")
    return f"<td{attributes}>{text}</td>"


def _row(ranking: Ranking, rank: float, row: SettingRow, content: LeaderboardContent) -> str:
    rank_cell, model, setting, mean_std, count, steps, source, config = map(html.escape,
                                                                           row_cells(ranking, rank, row))
    mean = row.statistics[ranking.metric.alias][0]
    steps_value = ranking.study_of(row).scale.steps
    runs = ", ".join(f'<a href="{html.escape(content.record_links[run])}">{html.escape(run)}</a>'
                     if run in content.record_links else html.escape(run) for run in row.run_ids)
    return "<tr>" + "".join([
        _td(rank_cell, _number_key(rank), "number"), _td(model), _td(setting, setting_key(row)),
        _td(mean_std, _number_key(mean), "number"), _td(count, count, "number"),
        _td(steps, "" if steps_value is None else str(steps_value), "number"), _td(source, css="source"),
        _td(config), _td(runs, css="runs"), _td(html.escape(packages_of(ranking, row))),
        _td(html.escape(fit_hashes_of(ranking, row)))]) + "</tr>"


def _table(ranking: Ranking, content: LeaderboardContent) -> str:
    headers = "".join(f'<th data-type="{COLUMN_TYPES.get(h, "text")}">{html.escape(h)}</th>' for h in HEADERS)
    body = "".join(_row(ranking, rank, row, content) for rank, row in zip(ranking.ranks, ranking.rows))
    return (f'<table class="sortable ranking" data-metric="{ranking.metric.alias}" '
            f'data-source="{html.escape(ranking.source)}"><thead><tr>{headers}</tr></thead><tbody>{body}</tbody>'
            "</table>")


def _banner(content: LeaderboardContent) -> str:
    headers = "".join(f"<th>{html.escape(h)}</th>" for h in BANNER_HEADERS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in banner_rows(content))
    return (f'<section id="scale" class="scale"><h2>Scale</h2><p>{html.escape(BANNER_INTRO)}</p>'
            f'<table class="scale-table"><thead><tr>{headers}</tr></thead><tbody>{rows}</tbody></table></section>')


def _section(dataset: str, source: str, rankings: list[Ranking], studies: list, content: LeaderboardContent,
             out_dir: Path, embed: bool) -> list[str]:
    title = section_title(dataset, source)
    parts = [f'<section id="{anchor(title)}"><h2>{html.escape(title)}</h2>']
    for ranking in rankings:
        parts.append(f"<h3>{html.escape(metric_heading(ranking))}</h3>" + "".join(
            f'<p class="caption">{html.escape(line)}</p>' for line in ranking_caption(ranking))
            + _table(ranking, content))
        if ranking.slug in content.ranking_figures:
            parts.append(_study_figure(content.ranking_figures[ranking.slug], out_dir, embed))
    for study in studies:
        if content.study_figures.get(study.slug):
            parts.append(f"<h3>Figures: {html.escape(study.title)}</h3>")
            parts += [_study_figure(figure, out_dir, embed) for figure in content.study_figures[study.slug]]
    parts.append("</section>")
    return parts


def _run_figures(content: LeaderboardContent, out_dir: Path, embed: bool) -> list[str]:
    parts = ['<section id="figures-of-single-runs"><h2>Figures of single runs</h2>']
    for run_id, paths, scale in content.run_figures:
        parts.append(f"<h3>{html.escape(run_id)}</h3>" + "".join(
            _figure(p, f"{run_id}: {p.stem[len(run_id) + 1:]}, drawn by its model's plugin. Scale: {scale}.",
                    out_dir, embed) for p in paths))
    parts.append("</section>")
    return parts


def html_page(content: LeaderboardContent, out_dir: Path, embed_figures: bool = False) -> str:
    """The page; its figures are the PNGs under out_dir, linked, or embedded for a page that travels alone."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"{HTML_TITLE}<style>{STYLE}</style></head><body>",
             "<h1>dlbench leaderboard</h1>",
             f"<p>Built from {content.record_count} run records ({content.solution_count} solutions) in "
             f"{html.escape(', '.join(str(d) for d in content.result_dirs))}. Click a column header to sort.</p>",
             '<p class="claims">' + html.escape(CLAIMS_LINK).replace("paper.md", '<a href="paper.md">paper.md</a>', 1)
             + "</p>", _banner(content), f"<p>{html.escape(HOW_TO_READ)}</p>"]
    if content.warnings:
        parts.append('<p class="warning">Warnings (records not used as they are, figures not drawn):</p>'
                     '<ul class="warning">' + "".join(f"<li>{html.escape(w)}</li>" for w in content.warnings) + "</ul>")
    listed = sections(content)
    parts.append("<nav><ul>" + "".join(
        f'<li><a href="#{anchor(section_title(d, s))}">{html.escape(section_title(d, s))}</a></li>'
        for d, s, _, _ in listed) + "</ul></nav>")
    for dataset, source, rankings, studies in listed:
        parts += _section(dataset, source, rankings, studies, content, out_dir, embed_figures)
    if content.run_figures:
        parts += _run_figures(content, out_dir, embed_figures)
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"
