"""The leaderboard as Markdown (README.md) and as one static HTML page (index.html: inline CSS, a small
inline script that sorts a table by the clicked column, figures linked from figures/ beside it or embedded as data
URIs; nothing fetched from elsewhere)."""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.leaderboard.tables import CONVERGENCE_SCORE, Ranking, SettingRow, Study, format_setting, source_label
from dlbench.results import format_mean_std

FIGURE_CAPTIONS = {
    "lines": "Headline metrics against β, one line per λ (mean ± std over replicates; the paper's Figures 4 and 5).",
    "percent_change": "Each (β, λ) cell's mean as % change from the (β = 1, λ = 0) cell of the same metric.",
    "pareto": "Cell means in (reconstruction ↓, MIG ↑): the Pareto front joined, the augmented Tchebycheff "
              "picks for w = 0.1, 0.5, 0.9 marked.",
}
HOW_TO_READ = (
    "Each table ranks the settings of one dataset from one data source by the mean of one headline metric over "
    "the setting's replicates (seeds, or random starts for the linear model): mean ± standard deviation (ddof = 0) "
    "and the replicate count n. Official data and stand-ins are never ranked in the same table, and every row "
    "names its source. Ties share the better rank. Each row names its runs (linked to the copies of their records "
    "under records/), the plugin package and version that made them, and their fit hashes; `config` is the hash "
    "of the model's hyperparameters (less the swept grid) and the dataset's parameters, so rows with different "
    "configs are different experiments. A setting some of whose replicates did not converge (a score the model "
    "reports, such as the linear model's) says how many; its mean is shown, not hidden.")


@dataclass
class LeaderboardContent:
    result_dirs: list[Path]
    record_count: int
    solution_count: int
    rankings: list[Ranking]
    studies: list[Study]
    study_figures: dict[str, dict[str, Path]]  # study slug → kind → figure
    run_figures: list[tuple[str, list[Path]]]  # (run id, figures its model's plugin drew)
    record_links: dict[str, str]  # run id → path of its record copy, relative to the leaderboard
    warnings: list[str] = field(default_factory=list)


def _section_title(dataset: str, source: str) -> str:
    return f"{dataset}: {source_label(source)} data"


def _anchor(text: str) -> str:
    """GitHub's heading anchor: lower case, spaces to hyphens, other punctuation dropped."""
    return "".join("-" if c == " " else c for c in text.lower() if c.isalnum() or c in " -_")


def _sections(content: LeaderboardContent) -> list[tuple[str, str, list[Ranking], list[Study]]]:
    keys = dict.fromkeys([(r.dataset, r.source) for r in content.rankings] +
                         [(s.dataset, s.source) for s in content.studies])
    return [(dataset, source, [r for r in content.rankings if (r.dataset, r.source) == (dataset, source)],
             [s for s in content.studies if (s.dataset, s.source) == (dataset, source)]) for dataset, source in keys]


def _rank_text(rank: float) -> str:
    return "-" if math.isnan(rank) else f"{rank:.0f}"


def _setting_text(row: SettingRow) -> str:
    """The setting, flagged when some of its replicates did not converge (a model that reports it)."""
    text = format_setting(row.setting)
    converged, _, count = row.statistics.get(CONVERGENCE_SCORE, (math.nan, math.nan, 0))
    if count and converged < 1:
        text += f" (not converged: {round((1 - converged) * count)}/{count})"
    return text


def _row_cells(ranking: Ranking, rank: float, row: SettingRow) -> list[str]:
    mean, std, count = row.statistics[ranking.metric.alias]
    return [_rank_text(rank), row.model, _setting_text(row), format_mean_std(mean, std), str(count),
            source_label(row.source), row.config_hash]


HEADERS = ["rank", "model", "setting", "mean ± std", "n", "source", "config", "runs", "package", "fit hash"]


def _metric_heading(ranking: Ranking) -> str:
    arrow = "higher is better" if ranking.metric.higher_is_better else "lower is better"
    return f"{ranking.metric.label} ({arrow}; scores: {', '.join(ranking.metric.scores)})"


# ---------------------------------------------------------------------------------------------------
# Markdown


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(content: LeaderboardContent, out_dir: Path) -> str:
    lines = ["# dlbench leaderboard", "",
             f"Built from {content.record_count} run records ({content.solution_count} solutions) in "
             f"{', '.join(f'`{d}`' for d in content.result_dirs)}.", "", HOW_TO_READ, ""]
    if content.warnings:
        lines += ["Warnings (records not used, figures not drawn):", "", *(f"- {_md(w)}" for w in content.warnings),
                  ""]
    sections = _sections(content)
    lines += ["## Contents", "", *(f"- [{_section_title(d, s)}](#{_anchor(_section_title(d, s))})"
                                   for d, s, _, _ in sections)]
    if content.run_figures:
        lines.append("- [Figures of single runs](#figures-of-single-runs)")
    lines.append("")
    for dataset, source, tables, studies in sections:
        lines += [f"## {_section_title(dataset, source)}", ""]
        for ranking in tables:
            lines += [f"### {_md(_metric_heading(ranking))}", "",
                      "| " + " | ".join(HEADERS) + " |",
                      "|" + "|".join("---:" if h in ("rank", "n") else "---" for h in HEADERS) + "|"]
            for rank, row in zip(ranking.ranks, ranking.rows):
                runs = ", ".join(f"[{run}]({content.record_links[run]})" if run in content.record_links else run
                                 for run in row.run_ids)
                cells = [*_row_cells(ranking, rank, row), runs, ", ".join(row.packages), ", ".join(row.fit_hashes)]
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
            lines.append("")
        for study in studies:
            lines += [f"### Figures: {_md(study.title)}", ""]
            for kind, path in content.study_figures.get(study.slug, {}).items():
                link = Path(path).relative_to(out_dir).as_posix()
                lines += [FIGURE_CAPTIONS[kind], "", f"![{kind}]({link})", ""]
            picks = ", ".join(f"w = {w:g}: " + ("-" if p is None else f"β = {p[0]:g}, λ = {p[1]:g}")
                              for w, p in study.tchebycheff_picks().items())
            lines += [f"Augmented Tchebycheff picks: {picks}.", ""]
    if content.run_figures:
        lines += ["## Figures of single runs", ""]
        for run_id, paths in content.run_figures:
            lines += [f"### {run_id}", "", *(f"![{p.name}]({p.relative_to(out_dir).as_posix()})" for p in paths), ""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------------
# HTML

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.runs { font-size: 12px; max-width: 32em; word-break: break-all; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
.warning { color: #8a4b00; } .source { font-weight: 600; }
"""

SCRIPT = """
function cellKey(row, column, numeric) {
  const cell = row.cells[column];
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  if (!numeric) return raw;
  const value = parseFloat(raw);
  return isNaN(value) ? null : value;
}
function sortTable(header) {
  const table = header.closest("table");
  const column = Array.prototype.indexOf.call(header.parentNode.children, header);
  const numeric = header.dataset.type === "number";
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort(function (a, b) {
    const x = cellKey(a, column, numeric), y = cellKey(b, column, numeric);
    if (x === null || y === null) return (x === null) - (y === null);  // unknown values last
    const order = numeric ? x - y : String(x).localeCompare(String(y));
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

NUMERIC_HEADERS = {"rank", "mean ± std", "n"}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _figure(path: Path, caption: str, out_dir: Path, embed: bool) -> str:
    """A figure linked from the page's folder (figures/ beside index.html), or embedded as a data URI."""
    source = _data_uri(path) if embed else html.escape(Path(path).relative_to(out_dir).as_posix())
    return (f'<figure><img alt="{html.escape(caption)}" src="{source}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _sort_value(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _html_table(ranking: Ranking, content: LeaderboardContent) -> str:
    headers = "".join(f'<th data-type="{"number" if h in NUMERIC_HEADERS else "text"}">{html.escape(h)}</th>'
                      for h in HEADERS)
    body = []
    for rank, row in zip(ranking.ranks, ranking.rows):
        mean, _, count = row.statistics[ranking.metric.alias]
        cells = _row_cells(ranking, rank, row)
        runs = ", ".join(f'<a href="{html.escape(content.record_links[run])}">{html.escape(run)}</a>'
                         if run in content.record_links else html.escape(run) for run in row.run_ids)
        body.append(
            "<tr>"
            f'<td class="number" data-sort="{_sort_value(rank)}">{cells[0]}</td>'
            f"<td>{html.escape(cells[1])}</td><td>{html.escape(cells[2])}</td>"
            f'<td class="number" data-sort="{_sort_value(mean)}">{html.escape(cells[3])}</td>'
            f'<td class="number" data-sort="{count}">{cells[4]}</td>'
            f'<td class="source">{html.escape(cells[5])}</td><td>{html.escape(cells[6])}</td>'
            f'<td class="runs">{runs}</td><td>{html.escape(", ".join(row.packages))}</td>'
            f'<td>{html.escape(", ".join(row.fit_hashes))}</td>'
            "</tr>")
    return (f'<table class="sortable ranking" data-metric="{ranking.metric.alias}" data-source="{ranking.source}">'
            f"<thead><tr>{headers}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def html_page(content: LeaderboardContent, out_dir: Path, embed_figures: bool = False) -> str:
    """The page; its figures are the PNGs under out_dir, linked, or embedded for a page that travels alone."""
    sections = _sections(content)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>dlbench leaderboard</title><style>{STYLE}</style></head><body>",
             "<h1>dlbench leaderboard</h1>",
             f"<p>Built from {content.record_count} run records ({content.solution_count} solutions) in "
             f"{html.escape(', '.join(str(d) for d in content.result_dirs))}. Click a column header to sort.</p>",
             f"<p>{html.escape(HOW_TO_READ)}</p>"]
    if content.warnings:
        parts.append('<p class="warning">Warnings (records not used, figures not drawn):</p><ul class="warning">' +
                     "".join(f"<li>{html.escape(w)}</li>" for w in content.warnings) + "</ul>")
    parts.append("<nav><ul>" + "".join(
        f'<li><a href="#{_anchor(_section_title(d, s))}">{html.escape(_section_title(d, s))}</a></li>'
        for d, s, _, _ in sections) + "</ul></nav>")
    for dataset, source, tables, studies in sections:
        title = _section_title(dataset, source)
        parts.append(f'<section id="{_anchor(title)}"><h2>{html.escape(title)}</h2>')
        for ranking in tables:
            parts.append(f"<h3>{html.escape(_metric_heading(ranking))}</h3>{_html_table(ranking, content)}")
        for study in studies:
            parts.append(f"<h3>Figures: {html.escape(study.title)}</h3>")
            parts += [_figure(path, FIGURE_CAPTIONS[kind], out_dir, embed_figures)
                      for kind, path in content.study_figures.get(study.slug, {}).items()]
        parts.append("</section>")
    if content.run_figures:
        parts.append('<section id="figures-of-single-runs"><h2>Figures of single runs</h2>')
        for run_id, paths in content.run_figures:
            parts.append(f"<h3>{html.escape(run_id)}</h3>" + "".join(
                _figure(p, f"{run_id}: {p.name}", out_dir, embed_figures) for p in paths))
        parts.append("</section>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"

