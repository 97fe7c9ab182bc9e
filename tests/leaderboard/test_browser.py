"""The leaderboard page in a real browser (headless Chromium): the scale banner shows every study's steps and
seeds, its tables render, clicking a column header sorts the rows by that column both ways (settings by their
values as numbers), every figure decodes and has a caption naming its scale, and the page links paper.md. A small
harness script is added to a copy of the page; it clicks, measures and writes its findings into the DOM, which
Chromium dumps."""
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
from dlbench.leaderboard.fixtures import deep_record, write_run, zoo_record

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
  const setting = headers.find(function (h) { return h.textContent.trim() === "setting"; });
  setting.click();
  found.settingsSorted = settings();
  const images = Array.from(document.images);
  found.images = images.length;
  found.decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  found.captions = Array.from(document.querySelectorAll("figure")).map(function (f) {
    const caption = f.querySelector("figcaption");
    return caption ? caption.textContent : "";
  });
  const banner = document.querySelector("#scale table");
  found.banner = banner ? Array.from(banner.tBodies[0].rows).map(function (r) {
    return Array.from(r.cells).map(function (c) { return c.textContent; });
  }) : [];
  found.paperLinks = document.querySelectorAll('a[href="paper.md"]').length;
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
    names = ("mig.mig", "sap_score.sap", "training.reconstruction")
    for dataset, source in (("dsprites", "official"), ("dsprites", "procedural")):
        scores = {name: rng.random((3, 2, 2)) for name in names}
        write_run(runs, deep_record(dataset, source, [1.0, 4.0, 16.0], [0.0, 2.0], [0, 1], scores, beta_steps=2_000,
                                    training_steps=500))
    # A zoo model on the official data: its axis c_max, whose values sort differently as text and as numbers.
    scores = {name: rng.random((6, 2)) for name in names}
    write_run(runs, zoo_record("annealed_vae", "dsprites", "official", {"c_max": [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]},
                               [0, 1], scores, training_steps=3_000))
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
    assert found["rowsPerTable"] == [12] * 3 + [6] * 3  # official: both models compared; the stand-in: one
    # The first table is a MIG ranking: best first, i.e. descending means; one click sorts ascending.
    assert found["before"] == sorted(found["before"], reverse=True)
    assert found["afterFirstClick"] == sorted(found["before"]) and found["ariaSort"] == "ascending"
    assert found["settingsAfter"] != found["settingsBefore"]
    assert found["afterSecondClick"] == sorted(found["before"], reverse=True)

    def setting(text):  # "beta=16, lambda=0" → (("beta", 16.0), ("lambda", 0.0))
        return tuple((name, float(value)) for name, value in (part.split("=") for part in text.split(", ")))

    sorted_settings = [setting(text) for text in found["settingsSorted"]]
    assert sorted_settings == sorted(sorted_settings) and len(sorted_settings) == 12
    assert [s[0][1] for s in sorted_settings if s[0][0] == "c_max"] == [5, 10, 25, 50, 75, 100]  # not 10, 100, 25...

    pictures = [p for p in built.written if p.suffix == ".png"]
    assert found["images"] == len(found["captions"]) == len(pictures) == 2 * 3 + 1 * 2 + 2 * 3
    assert found["decoded"] == found["images"]
    for caption in found["captions"]:  # each names its study's steps, share of the protocol, seeds and data
        assert re.search(r"[\d,]+ steps.*% of the protocol's [\d,]+.*\d seeds.*data", caption), caption

    assert len(found["banner"]) == len(built.content.studies) == 3
    for row, study in zip(found["banner"], built.content.studies):
        assert row[:3] == [study.title, study.scale.steps_text(), "2 seeds"]
    assert found["banner"][0][1] == "3,000 steps, 1 % of the protocol's 300,000"
    assert found["paperLinks"] == 1


def test_page_screenshot_shows_content(page, tmp_path):
    index, _ = page
    screenshot = tmp_path / "page.png"
    completed = chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000", index.as_uri())
    assert screenshot.is_file(), completed.stderr[-2000:]
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05
