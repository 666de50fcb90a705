"""The HTML report from a real store after a real analysis cycle: self-contained, complete;
served by the monitor with the calculators its analysis loop fitted."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import plotly.offline
from prometheus_client.parser import text_string_to_metric_families

from bentos.training.data import Split
from monitor.analysis.charts import bundle_version
from monitor.analysis.cycle import CycleOptions, run_cycle
from monitor.analysis.report import render_report
from monitor.analysis.versions import VersionCache
from monitor.core.settings import MonitorSettings
from monitor.memory.audit import AuditEntry
from monitor.metrics.registry import MonitorMetrics
from monitor.store import Store
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import RoleAuth, measuring_settings, running_monitor
from tests.support.records import served
from tests.support.report_page import figures

CHUNK = 500


def settings(tmp_path: Path) -> MonitorSettings:
    return measuring_settings(tmp_path, CHUNK)


def ship(store: Store, split: Split, reg: Any, start: int, count: int, labelled: int) -> None:
    """Replay rows scored by `reg`'s booster into the store; the first `labelled` get labels."""
    shipped, labels = served(split, reg, start, count, reg.version)
    store.append_records(shipped)
    store.append_labels(labels[:labelled])


def test_report_is_self_contained_and_shows_every_part(tmp_path: Path, registrations, split):
    good, worse = registrations["good"], registrations["no-key-features"]
    with SqliteStore(tmp_path / "monitor.db") as store:
        store.register(good)
        store.register(worse)
        store.put_state("known_good/rain_forecast", {"version": good.version})
        ship(store, split, good, 0, 1000, labelled=1000)
        ship(store, split, worse, 1000, 1000, labelled=500)
        store.append_audit(
            AuditEntry("decision", "rain_forecast", details={"reason": "<script>alert(1)</script>"})
        )
        cache = VersionCache(store, CHUNK)
        assert (
            len(run_cycle(store, CycleOptions.of(settings(tmp_path)), cache, MonitorMetrics())) == 4
        )
        page = render_report(store, "rain_forecast", cache)
        # The CLI has no analysis cache: the report fits what it needs and looks the same.
        standalone = render_report(store, "rain_forecast")
        first = store.chunks("rain_forecast", store.versions("rain_forecast")[0].version)[0]
    shown = figures(page)
    assert [t for t, _ in figures(standalone)] == [t for t, _ in shown]

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # No network needed to view it: plotly.js is inline, nothing is loaded from elsewhere.
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    # The library itself is inline, once: plotly.js's cartesian bundle of the very version
    # the Python package writes figures for.
    assert page.count("id=mg-plotly>") == 1
    assert bundle_version() == plotly.offline.get_plotlyjs_version()
    assert len(page) < 1_500_000
    assert good.version in page and worse.version in page
    for title in (
        "ROC AUC per chunk: estimated with its calibrated 90% interval, realized, and the "
        "known-good shadow",
        "Estimate error per chunk, with the interval and NannyML's band",
        "Shadow re-scoring",
        "Univariate drift",
        "Reliance per feature: mean |TreeSHAP contribution|",
        "Multivariate drift",
        "Data quality",
        "ROC AUC per slice",
        "NannyML CBPE: ROC AUC",
        "NannyML data-reconstruction drift",
    ):
        assert title in page, title
    assert "NannyML figures unavailable" not in page
    # The audit log is shown, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    # One figure per plot with something to draw (8 + 2 NannyML per version with chunks),
    # each trace named (the legend and hover say what a line is).
    assert len(shown) == 2 * 10 - page.count("Nothing to draw yet")
    for title, spec in shown:
        names = [t.get("name") for t in spec["data"]]
        assert all(names) and not any(re.fullmatch(r"trace \d+", n) for n in names), title
        assert not any("(low)" in n for n in names), title
    # The headline chart: the calibrated interval the decision stands behind, not NannyML's
    # band; each chunk at the middle of its event-time range, its range in the hover.
    headline = next(spec for title, spec in shown if title.startswith("ROC AUC per"))
    names = [t["name"] for t in headline["data"] if t.get("showlegend", True)]
    assert names[0] == "calibrated 90% interval" and not any("NannyML" in n for n in names)
    estimated = next(t for t in headline["data"] if t["name"] == "estimated (CBPE)")
    assert estimated["customdata"][0].startswith("chunk 0: ")
    assert headline["layout"]["xaxis"]["type"] == "date"
    start, end = (pd.Timestamp(t).tz_convert(None) for t in (first.start_time, first.end_time))
    assert start < pd.Timestamp(estimated["x"][0]) < end
    # Per version, the newest chunk that moved is explained in one table (or the page says
    # none did); on these replay rows at least one version's chunks drift.
    explained = page.count("<table class=explain>")
    assert explained >= 1
    assert explained + page.count("No degraded or drifting chunk") == 2
    assert "reliance on the reference" in page and "reliance now" in page


def calculator_fits(client: httpx.Client) -> float:
    """`modelguard_monitor_calculator_fits_total` from the monitor's /metrics."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "modelguard_monitor_calculator_fits_total":
                return sample.value
    raise AssertionError("modelguard_monitor_calculator_fits_total is not exported")


def test_reports_reuse_the_calculators_the_analysis_fitted(
    tmp_path: Path, registrations: dict[str, Any], split: Split
) -> None:
    """One fit per version for the life of the server: the analysis loop fits each version
    once, and `GET /reports/{model}` uses those calculators instead of refitting them."""
    versions = [registrations["good"], registrations["no-key-features"]]
    env = {"MONITOR_CHUNK_SIZE": "250"}
    with (
        running_monitor(tmp_path, env=env, analysis_interval_seconds=1) as mon,
        httpx.Client(base_url=mon.url, timeout=120, auth=RoleAuth(mon)) as client,
    ):
        for i, reg in enumerate(versions):
            body = reg.model_dump(by_alias=True, mode="json")
            assert client.post("/v1/models", json=body, headers=mon.auth).status_code == 201
            shipped, labels = served(split, reg, 250 * i, 250, reg.version)
            assert client.post("/v1/records", json={"records": shipped}).status_code == 202
            assert client.post("/v1/labels", json={"labels": labels}).status_code == 202
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            analysed = {c["version"] for c in client.get("/v1/models/rain_forecast/chunks").json()}
            if analysed == {reg.version for reg in versions}:
                break
            time.sleep(0.5)
        assert analysed == {reg.version for reg in versions}, mon.log()
        assert calculator_fits(client) == len(versions)  # the analysis loop's fits

        for _ in range(2):
            page = client.get("/reports/rain_forecast")
            assert page.status_code == 200, page.text[:2000]
            assert "NannyML figures unavailable" not in page.text
        assert calculator_fits(client) == len(versions), mon.log()
