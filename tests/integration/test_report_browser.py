"""The report as a person opens it: a demo-sized report (25 chunks over two versions, one
of them a candidate) loaded in a real browser (Debian's headless Chromium, installed by
scripts/install-tools.sh) with no network. The page logs nothing to the console, every
figure is drawn with data points, the file stays under 1.5 MB, and a screenshot is written
next to the test's output for a person to look at.

Chromium is driven through its command line (`--dump-dom`, `--screenshot`, console messages
on stderr with `--enable-logging=stderr`): nothing to pin, and what is checked is what a
person's browser does with the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bentos.training.data import Split
from monitor.analysis.cycle import CycleOptions, run_cycle
from monitor.analysis.report import render_report
from monitor.analysis.versions import VersionCache
from monitor.memory.candidates import CandidateChunk, CandidateState
from monitor.metrics.registry import MonitorMetrics
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import measuring_settings
from tests.support.records import served

CHUNK = 200
MAX_BYTES = 1_500_000
# Virtual time for the page to unpack plotly.js and draw every figure before the dump.
BUDGET_MS = 30_000
# Any console message is a failure; stderr lines of Chromium's own (dbus, GPU) are not.
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)")


@dataclass
class Report:
    path: Path
    page: str


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory, registrations: dict[str, Any], split: Split
) -> Report:
    """The demo's shape: a known-good version (15 chunks) and a worse release (10 chunks,
    the last 2 unlabelled) with the known-good scored in shadow, and a declared candidate."""
    tmp = tmp_path_factory.mktemp("report")
    good, worse = registrations["good"], registrations["no-key-features"]
    with SqliteStore(tmp / "monitor.db") as store:
        store.register(good)
        store.register(worse)
        store.put_state("known_good/rain_forecast", {"version": good.version})
        for reg, start, count, labelled in (
            (good, 0, 15 * CHUNK, 15 * CHUNK),
            (worse, 15 * CHUNK, 10 * CHUNK, 8 * CHUNK),
        ):
            records, labels = served(split, reg, start, count, reg.version)
            store.append_records(records)
            store.append_labels(labels[:labelled])
        cache = VersionCache(store, CHUNK)
        options = CycleOptions.of(measuring_settings(tmp, CHUNK))
        assert len(run_cycle(store, options, cache, MonitorMetrics())) == 25
        candidates = CandidateState(store)
        candidates.add("rain_forecast", worse.version, "api", at="2013-08-15T00:00:00+00:00")
        candidates.save_chunks(
            "rain_forecast",
            worse.version,
            [candidate_chunk(c, good.version) for c in store.chunks("rain_forecast", good.version)],
        )
        page = render_report(store, "rain_forecast", cache)
    path = tmp / "rain_forecast.html"
    path.write_text(page)
    return Report(path, page)


def candidate_chunk(c: Any, baseline: str) -> CandidateChunk:
    est = c.estimated["roc_auc"]
    return CandidateChunk(
        chunk_index=c.chunk_index,
        baseline_version=baseline,
        rows=c.rows,
        first_seq=c.first_seq,
        last_seq=c.last_seq,
        candidate_estimate=est.value - 0.05,
        candidate_sampling_error=est.sampling_error,
        baseline_estimate=est.value,
        baseline_sampling_error=est.sampling_error,
        rank_correlation=0.9,
        labelled_rows=c.labelled_rows,
        candidate_realized=None,
        baseline_realized=c.realized.get("roc_auc"),
        start_time=c.start_time,
        end_time=c.end_time,
        analysed_at=c.analysed_at,
    )


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a file, offline: every host name fails to resolve."""
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is not installed: run scripts/install-tools.sh"
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={BUDGET_MS}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def drawn(figure: str) -> bool:
    """Whether a rendered plotly div holds data: a line or a marker of a scatter trace, or
    a heatmap's image."""
    line = re.search(r'<path class="js-line"[^>]* d="M[^"]+"', figure)
    point = re.search(r'<path class="point"[^>]* d="M', figure)
    cells = re.search(r'<g class="hm"><image ', figure)
    return bool(line or point or cells)


def test_the_report_opens_in_a_browser_with_every_figure_drawn(
    report: Report, tmp_path: Path
) -> None:
    size = report.path.stat().st_size
    assert size < MAX_BYTES, f"{size} bytes"
    figures = report.page.count("<div class=mg-figure")
    assert figures >= 2 * 8 + 1, figures  # 2 versions' own figures, NannyML's, the candidate's
    assert "Nothing to draw yet" not in report.page  # every figure has data in the demo

    run = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", report.path.as_uri())
    console = [m.group(1) for line in run.stderr.splitlines() if (m := CONSOLE.search(line))]
    assert console == [], console
    dom = run.stdout
    assert f'data-figures="{figures}"' in dom, "the page did not finish drawing its figures"
    assert "Drawing the figures..." not in dom  # the status line is gone once drawn
    rendered = dom.split('<div class="mg-figure')[1:]
    assert len(rendered) == figures
    titles = re.findall(r"<h4 class=figure>(.*?)</h4><div class=mg-figure", report.page)
    empty = [title for title, figure in zip(titles, rendered, strict=True) if not drawn(figure)]
    assert empty == [], f"figures without data points: {empty}"

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,5000", report.path.as_uri())
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one
    print(f"report {report.path} ({size} bytes), screenshot {shot}")
