"""The report's chart plumbing: the chunks' event-time axis, compact figure JSON, and the
inlined plotly.js being the version the Python package writes figures for."""

from __future__ import annotations

import base64
import gzip
import re
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.offline

from monitor.analysis import charts
from monitor.analysis.charts import ChunkAxis, chunk_span, compact, figure_html
from tests.support.report_page import figures


@dataclass
class Chunk:
    chunk_index: int
    start_time: str
    end_time: str = ""
    period_start: str = ""
    period_end: str = ""


def test_each_chunk_sits_at_the_middle_of_its_event_time_range() -> None:
    chunks = [
        Chunk(0, "2013-07-01T00:00:00+00:00", "2013-07-03T00:00:00+00:00"),
        Chunk(1, "2013-07-03T00:00:00+00:00", "2013-07-09T00:00:00+00:00"),
    ]
    axis = ChunkAxis(chunks)
    assert axis.timed
    assert axis.x == ["2013-07-02 00:00:00", "2013-07-06 00:00:00"]
    assert axis.labels == ["chunk 0: 2013-07-01 to 2013-07-03", "chunk 1: 2013-07-03 to 2013-07-09"]
    assert axis.edges == ["2013-07-01 00:00:00", "2013-07-03 00:00:00", "2013-07-09 00:00:00"]
    assert chunk_span(Chunk(2, "2013-07-01T10:00:00")) == ("2013-07-01T10:00:00",) * 2
    # a chunk by period covers its whole period, not just the days that had rows
    by_period = Chunk(
        3, "2013-07-02T00:00:00Z", "2013-07-20T00:00:00Z", "2013-07-01T00Z", "2013-07-31T00Z"
    )
    assert chunk_span(by_period) == ("2013-07-01T00Z", "2013-07-31T00Z")


def test_chunks_without_times_fall_back_to_their_numbers() -> None:
    axis = ChunkAxis([Chunk(3, ""), Chunk(4, "")])
    assert not axis.timed and axis.x == [3, 4] and axis.labels == ["chunk 3", "chunk 4"]


def test_a_figure_keeps_its_named_traces_and_says_when_it_has_nothing() -> None:
    axis = ChunkAxis([Chunk(0, "2013-07-01T00:00:00+00:00", "2013-07-02T00:00:00+00:00")])
    fig = go.Figure()
    fig.add_scatter(x=axis.x, y=[0.123456789], name="estimated")
    fig.add_scatter(x=axis.x, y=[None], name="realized")  # nothing to draw: left out
    axis.style(fig)
    page = figure_html(fig, "A <title>")
    ((title, spec),) = figures(page)
    assert title == "A <title>"
    assert [t["name"] for t in spec["data"]] == ["estimated"]
    assert spec["data"][0]["y"] == [0.1235]  # 4 significant digits
    assert spec["data"][0]["customdata"] == ["chunk 0: 2013-07-01 to 2013-07-02"]
    # The title is the heading above the plot (never under the toolbar), not plotly's own.
    assert "template" not in spec["layout"] and not spec["layout"].get("title", {}).get("text")
    empty = go.Figure()
    empty.add_scatter(x=[1], y=[None], name="x")
    assert "Nothing to draw yet" in figure_html(empty, "Empty")


def test_compact_cuts_floats_and_drops_non_finite() -> None:
    assert compact({"a": [1.23456789e-7, float("nan"), float("inf"), 2, "s"]}) == {
        "a": [1.235e-7, None, None, 2, "s"]
    }


def test_the_inlined_plotly_is_the_version_plotly_writes_figures_for() -> None:
    page = charts.page_scripts()
    packed = re.search(r"id=mg-plotly>([^<]+)</script>", page)
    assert packed is not None
    js = gzip.decompress(base64.b64decode(packed.group(1)))
    assert js.startswith(b"/**\n* plotly.js (cartesian - minified) v")
    assert charts.bundle_version() == plotly.offline.get_plotlyjs_version()
    assert len(page) < 700_000  # the 4.6 MB full bundle made each report ~4.8 MB
