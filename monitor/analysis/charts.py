"""How the report's figures reach the page: the chunks' event-time axis, one figure as a div
plus its JSON, and plotly.js inlined once.

Why this and not `fig.to_html()`: the report must open with no network (the cluster has no
internet) and stay small. The Python package ships only the full plotly.js (4.6 MB, most of
a report); the report draws only cartesian traces, so the page carries plotly.js's own
cartesian bundle (npm `plotly.js-cartesian-dist-min`, the version the Python package
embeds; assets/), gzipped and base64-encoded (0.6 MB), unpacked by the browser's
`DecompressionStream`. Each figure is its JSON with floats cut to 4 significant digits and
the default template, which plotly repeats in every figure, sent once.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io

PLOTLY_BUNDLE = "plotly-cartesian.min.js"
SIGNIFICANT_DIGITS = 4
# Room above the plot for plotly's toolbar: a figure's title is an HTML heading above it.
_MARGIN = {"l": 55, "r": 20, "t": 30, "b": 40}
_CONFIG = {"displaylogo": False, "responsive": True}


class Spanned(Protocol):
    """What a chunk's place on the time axis is read from (`ChunkEvidence`, a candidate's
    `CandidateChunk`)."""

    @property
    def chunk_index(self) -> int: ...
    @property
    def start_time(self) -> str: ...
    @property
    def end_time(self) -> str: ...


def chunk_span(chunk: Spanned) -> tuple[str, str]:
    """The event-time range a chunk covers, as ISO-8601: its period for a chunk by period,
    else its first and last record's event time ("" when unknown)."""
    # only a chunk by period (ChunkEvidence) has one; a candidate's chunk mirrors its
    # baseline chunk's records and carries no period of its own
    period_start = str(getattr(chunk, "period_start", "") or "")
    if period_start:
        return period_start, str(getattr(chunk, "period_end", "") or "") or period_start
    return chunk.start_time or "", chunk.end_time or chunk.start_time or ""


class ChunkAxis:
    """The x of a version's chunks: each chunk at the middle of its event-time range, its
    range shaded, its number and range in the hover. Chunks without times (older evidence)
    fall back to their numbers."""

    def __init__(self, chunks: Sequence[Any]) -> None:
        spans = [chunk_span(c) for c in chunks]
        self.indices = [int(c.chunk_index) for c in chunks]
        self.timed = bool(spans) and all(s for s, _ in spans)
        if self.timed:
            self.starts = [pd.Timestamp(s) for s, _ in spans]
            self.ends = [pd.Timestamp(e) for _, e in spans]
            self.x: list[Any] = [
                _stamp(s + (e - s) / 2) for s, e in zip(self.starts, self.ends, strict=True)
            ]
            daily = all(t == t.normalize() for t in self.starts + self.ends)
            self.labels = [
                f"chunk {i}: {_day(s, daily)} to {_day(e, daily)}"
                for i, s, e in zip(self.indices, self.starts, self.ends, strict=True)
            ]
        else:
            self.x = list(self.indices)
            self.labels = [f"chunk {i}" for i in self.indices]

    def __len__(self) -> int:
        return len(self.x)

    @property
    def edges(self) -> list[Any]:
        """Cell edges for a heatmap: each chunk's start, then the last chunk's end."""
        if not self.timed:
            return [i - 0.5 for i in self.x] + [self.x[-1] + 0.5] if self.x else []
        return [_stamp(s) for s in self.starts] + [_stamp(self.ends[-1])]

    def style(self, fig: go.Figure) -> None:
        """Shade every other chunk's range, name the axis, and put the chunk in the hover."""
        heatmap = any(t.type == "heatmap" for t in fig.data)
        if self.timed:
            for s, e in list(zip(self.starts, self.ends, strict=True))[1::2]:
                fig.add_vrect(
                    x0=_stamp(s), x1=_stamp(e), fillcolor="#888", opacity=0.08, line_width=0
                )
            shown = "one column per chunk" if heatmap else "shaded: every other chunk"
            fig.update_xaxes(title_text=f"event time ({shown})", type="date")
        else:
            fig.update_xaxes(title_text="chunk", dtick=1)
        # A legend even for one line: a person must be told what every line is.
        fig.update_layout(hovermode="closest" if heatmap else "x unified", showlegend=not heatmap)
        first = next(
            (
                t
                for t in fig.data
                if t.type == "scatter"
                and t.hoverinfo != "skip"
                and len(t.x or ()) == len(self)
                and _has_points(t)
            ),
            None,
        )
        if first is not None:
            first.update(
                customdata=self.labels,
                hovertemplate=f"%{{customdata}}<br>{first.name}: %{{y:.4g}}<extra></extra>",
            )


def _stamp(t: pd.Timestamp) -> str:
    return str((t.tz_convert("UTC") if t.tzinfo else t).strftime("%Y-%m-%d %H:%M:%S"))


def _day(t: pd.Timestamp, daily: bool) -> str:
    return str(t.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


def _has_points(trace: Any) -> bool:
    """Whether a trace has one finite value to draw (y, or z for a heatmap)."""
    values = trace.z if trace.type == "heatmap" else trace.y
    if values is None:
        return False
    flat = pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()), errors="coerce")
    return bool(np.isfinite(flat.to_numpy(dtype=float)).any())


def figure_html(fig: go.Figure, title: str, height: int = 360) -> str:
    """One figure: its title as a heading (never under the toolbar), a div, its JSON. Traces
    with nothing to draw are left out (no legend entry for an empty line); a figure with
    nothing at all says so instead of drawing empty axes."""
    fig.data = [t for t in fig.data if _has_points(t)]
    if not fig.data:
        return (
            f"<h4 class=figure>{_escape(title)}</h4>"
            "<p class=note>Nothing to draw yet: no chunk has these values.</p>"
        )
    fig.update_layout(title_text=None, height=height, margin=_MARGIN, template=None)
    fig.update_layout(legend={"font": {"size": 11}})
    spec = compact(fig.to_plotly_json())
    layout = spec["layout"]
    layout.pop("template", None)
    for name, axis in layout.items():
        # NannyML's single-panel figures let an axis match itself (plotly warns, ignores it).
        if isinstance(axis, dict) and axis.get("matches") == name.replace("axis", ""):
            axis.pop("matches")
    payload = json.dumps(spec, separators=(",", ":"), default=_json_default)
    return (
        f"<h4 class=figure>{_escape(title)}</h4><div class=mg-figure style='height:{height}px'>"
        f"</div><script type='application/json' class=mg-figure-spec>"
        f"{payload.replace('<', chr(92) + 'u003c')}</script>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return compact(value.tolist())
    raise TypeError(f"not JSON: {type(value).__name__}")


def compact(value: Any) -> Any:
    """`value` with every float cut to SIGNIFICANT_DIGITS (non-finite ones to null)."""
    if isinstance(value, float):
        return (
            float(f"{value:.{SIGNIFICANT_DIGITS}g}")
            if value == value and abs(value) != float("inf")
            else None
        )
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [compact(v) for v in value]
    if hasattr(value, "tolist"):
        return compact(value.tolist())
    return value


@functools.cache
def _bundle() -> tuple[str, str]:
    """The inlined plotly.js (gzipped, base64) and its version."""
    raw = resources.files("monitor.analysis").joinpath("assets", PLOTLY_BUNDLE).read_bytes()
    version = re.search(rb"v(\d+\.\d+\.\d+)", raw[:200])
    packed = base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode()
    return packed, version.group(1).decode() if version else "unknown"


def bundle_version() -> str:
    return _bundle()[1]


_LOADER = """
(async () => {
  const status = document.getElementById('mg-status');
  try {
    const b64 = document.getElementById('mg-plotly').textContent;
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const js = await new Response(
      new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
    const lib = document.createElement('script');
    lib.textContent = js;
    document.head.appendChild(lib);
    const template = JSON.parse(document.getElementById('mg-template').textContent);
    const config = JSON.parse(document.getElementById('mg-config').textContent);
    for (const spec of document.querySelectorAll('script.mg-figure-spec')) {
      const fig = JSON.parse(spec.textContent);
      fig.layout.template = template;
      await Plotly.newPlot(spec.previousElementSibling, fig.data, fig.layout, config);
    }
    status.remove();
    document.body.dataset.figures = String(document.querySelectorAll('.js-plotly-plot').length);
  } catch (err) {
    status.textContent = 'The figures could not be drawn in this browser: ' + err;
    console.error('modelguard report: ' + err);
  }
})();
"""


# Shown at the top of the page until the figures are drawn (or why they could not be).
STATUS = "<p id=mg-status class=note>Drawing the figures...</p>"


def page_scripts() -> str:
    """What the page needs once, at the end of its body: plotly.js, the shared template and
    config, and the loader that draws every figure."""
    packed, _ = _bundle()
    template = json.dumps(compact(plotly.io.templates["plotly"].to_plotly_json()))
    return (
        f"<script type='application/gzip;base64' id=mg-plotly>{packed}</script>"
        f"<script type='application/json' id=mg-template>{template}</script>"
        f"<script type='application/json' id=mg-config>{json.dumps(_CONFIG)}</script>"
        f"<script>{_LOADER}</script>"
    )
