"""The leaderboard page in a real browser (headless Chromium): its tables render, clicking a column header
sorts the rows by that column both ways, and every embedded figure decodes. A small harness script is added to
a copy of the page; it clicks, measures and writes its findings into the DOM, which Chromium dumps."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from dlbench.leaderboard.build import build_leaderboard
from dlbench.leaderboard.fixtures import deep_record, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: "
                                "apt-get install -y chromium), so the page cannot be checked in a browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")

HARNESS = """<script>
window.addEventListener("load", function () {
  const found = {};
  const tables = Array.from(document.querySelectorAll("table.sortable"));
  found.tables = tables.length;
  found.rowsPerTable = tables.map(function (t) { return t.tBodies[0].rows.length; });
  const table = tables[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  const mean = headers.find(function (h) { return h.textContent.trim() === "mean ± std"; });
  const column = headers.indexOf(mean);
  function keys() {
    return Array.from(table.tBodies[0].rows).map(function (r) { return parseFloat(r.cells[column].dataset.sort); });
  }
  function settings() {
    return Array.from(table.tBodies[0].rows).map(function (r) { return r.cells[2].textContent; });
  }
  found.before = keys(); found.settingsBefore = settings();
  mean.click();
  found.afterFirstClick = keys(); found.settingsAfter = settings(); found.ariaSort = mean.getAttribute("aria-sort");
  mean.click();
  found.afterSecondClick = keys();
  const images = Array.from(document.images);
  found.images = images.length;
  found.decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  const out = document.createElement("pre");
  out.id = "harness-result";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def chromium(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *arguments],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(3)
    for dataset, source in (("dsprites", "official"), ("dsprites", "procedural")):
        scores = {name: rng.random((3, 2, 2)) for name in ("mig.mig", "sap_score.sap", "training.reconstruction")}
        write_run(runs, deep_record(dataset, source, [1.0, 4.0, 16.0], [0.0, 2.0], [0, 1], scores))
    out = tmp_path_factory.mktemp("leaderboard")
    built = build_leaderboard([runs], out)
    return out / "index.html", built


def test_tables_sort_and_figures_load_in_chromium(page, tmp_path):
    index, built = page
    harnessed = index.with_name("harnessed.html")  # beside the page, where its figures are linked from
    harnessed.write_text(index.read_text().replace("</body>", HARNESS + "</body>"))
    completed = chromium(tmp_path, "--dump-dom", harnessed.as_uri())
    match = re.search(r'<pre id="harness-result">(.*?)</pre>', completed.stdout, re.S)
    assert match, f"the harness wrote nothing; chromium said: {completed.stderr[-2000:]}"
    found = json.loads(html.unescape(match.group(1)))

    assert found["tables"] == len(built.content.rankings) == 2 * 3
    assert all(rows == 6 for rows in found["rowsPerTable"])
    # The first table is a MIG ranking: best first, i.e. descending means; one click sorts ascending.
    assert found["before"] == sorted(found["before"], reverse=True)
    assert found["afterFirstClick"] == sorted(found["before"]) and found["ariaSort"] == "ascending"
    assert found["settingsAfter"] != found["settingsBefore"]
    assert found["afterSecondClick"] == sorted(found["before"], reverse=True)
    assert found["images"] == len([p for p in built.written if p.suffix == ".png"]) == 2 * 3
    assert found["decoded"] == found["images"]


def test_page_screenshot_shows_content(page, tmp_path):
    index, _ = page
    screenshot = tmp_path / "page.png"
    completed = chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000", index.as_uri())
    assert screenshot.is_file(), completed.stderr[-2000:]
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05
