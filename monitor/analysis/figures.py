"""The report's plotly figures of a version's stored ChunkEvidence (and of a candidate's
same-rows chunks), one builder per figure.

Each builder takes the version's chunks and their event-time axis (`charts.ChunkAxis`: each
chunk at the middle of its range) and returns the figure's HTML (`charts.figure_html`; the page
inlines plotly.js once). Every trace is named: the legend and the hover say what a line is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from monitor.analysis.charts import ChunkAxis, figure_html
from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import serving_gap_series
from monitor.memory.candidates import CandidateChunk


def _html(fig: go.Figure, axis: ChunkAxis, title: str, height: int = 380) -> str:
    # A point per chunk where a line is a series (a single chunk between gaps stays visible).
    for trace in fig.data:
        if trace.type == "scatter" and trace.mode is None:
            trace.update(mode="lines+markers", marker={"size": 5})
    axis.style(fig)
    return figure_html(fig, title, height)


def _band(
    fig: go.Figure,
    x: list[Any],
    lower: list[float | None],
    upper: list[float | None],
    name: str,
    color: str,
) -> None:
    """A filled band between `lower` and `upper`: one legend entry, both edges named."""
    group = name
    fig.add_scatter(
        x=x,
        y=upper,
        name=f"{name} (upper)",
        legendgroup=group,
        showlegend=False,
        mode="lines",
        line={"width": 0},
        hoverinfo="skip",
    )
    fig.add_scatter(
        x=x,
        y=lower,
        name=name,
        legendgroup=group,
        fill="tonexty",
        fillcolor=color,
        mode="lines",
        line={"width": 0},
        hoverinfo="skip",
    )


def _level(chunks: list[ChunkEvidence]) -> float | None:
    levels = [
        e.interval_level
        for c in chunks
        if (e := c.estimated.get("roc_auc")) is not None and e.interval_level
    ]
    return levels[-1] if levels else None


def _series(chunks: list[ChunkEvidence], get: Any) -> list[float | None]:
    out = []
    for c in chunks:
        try:
            value = get(c)
        except (KeyError, AttributeError):
            value = None
        out.append(None if value is None or not np.isfinite(value) else float(value))
    return out


def performance_figure(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    """The headline: the estimate with the calibrated interval the decision stands behind
    (NannyML's band is compared in the estimate-error figure), realized once labelled, the
    known-good shadow on the same rows and the alert threshold."""
    fig = go.Figure()
    x = axis.x
    level = _level(chunks)
    said = f"calibrated {level:.0%} interval" if level else "calibrated interval"
    _band(
        fig,
        x,
        _series(chunks, lambda c: c.estimated["roc_auc"].interval_lower),
        _series(chunks, lambda c: c.estimated["roc_auc"].interval_upper),
        said,
        "rgba(31,119,180,0.18)",
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.estimated["roc_auc"].value),
        name="estimated (CBPE)",
        line={"color": "#1f77b4"},
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.realized["roc_auc"]),
        name="realized",
        mode="lines+markers",
        line={"color": "#ff7f0e"},
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.known_good_estimated["roc_auc"].value),
        name="known-good, estimated (shadow)",
        line={"dash": "dot", "color": "#2ca02c"},
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.known_good_realized["roc_auc"]),
        name="known-good, realized (shadow)",
        line={"dash": "dash", "color": "#2ca02c"},
    )
    threshold = _series(chunks, lambda c: c.estimated["roc_auc"].lower_threshold)
    fig.add_scatter(
        x=x, y=threshold, name="lower threshold", mode="lines", line={"color": "red", "width": 1}
    )
    fig.update_yaxes(title_text="ROC AUC")
    return _html(
        fig,
        axis,
        f"ROC AUC per chunk: estimated with its {said}, realized, and the known-good shadow",
        420,
    )


def estimate_error_figure(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    """The monitor's own track record: how wrong the estimate was, chunk by chunk, against
    the calibrated interval and NannyML's +-3 sampling-error band (both around 0)."""
    fig = go.Figure()
    x = axis.x

    def off(c: ChunkEvidence, bound: str) -> float | None:
        e = c.estimated["roc_auc"]
        end = getattr(e, bound)
        return None if end is None or e.value is None else end - e.value

    def minus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    level = _level(chunks)
    said = f"calibrated {level:.0%} interval" if level else "calibrated interval"
    _band(
        fig,
        x,
        _series(chunks, lambda c: off(c, "interval_lower")),
        _series(chunks, lambda c: off(c, "interval_upper")),
        said,
        "rgba(31,119,180,0.18)",
    )
    for bound, shown in (("upper", True), ("lower", False)):
        fig.add_scatter(
            x=x,
            y=_series(chunks, lambda c, b=bound: off(c, b)),
            name=f"NannyML band, 3 sampling errors ({bound})"
            if not shown
            else ("NannyML band, 3 sampling errors"),
            legendgroup="nannyml",
            showlegend=shown,
            mode="lines",
            line={"dash": "dot", "color": "#7f7f7f", "width": 1},
        )
    error = _series(chunks, lambda c: minus(c.realized["roc_auc"], c.estimated["roc_auc"].value))
    fig.add_scatter(
        x=x, y=error, name="realized - estimated", mode="lines+markers", line={"color": "#ff7f0e"}
    )
    nowcast = _series(
        chunks, lambda c: minus(c.nowcast["roc_auc"].value, c.estimated["roc_auc"].value)
    )
    fig.add_scatter(
        x=x, y=nowcast, name="nowcast - estimated", line={"dash": "dash", "color": "#9467bd"}
    )
    fig.update_yaxes(title_text="ROC AUC difference", zeroline=True)
    record = chunks[-1].track_record.get("roc_auc")
    note = ""
    if record is not None and record.interval_coverage is not None:
        band = (
            f", {record.band_coverage:.0%} inside NannyML's band"
            if record.band_coverage is not None
            else ""
        )
        note = (
            f" (last {record.chunks} labelled: MAE {record.mae:.3f}, bias {record.bias:+.3f},"
            f" {record.interval_coverage:.0%} inside the {record.level:.0%} interval{band})"
        )
    return _html(
        fig, axis, "Estimate error per chunk, with the interval and NannyML's band" + note, 400
    )


def shadow_figure(
    chunks: list[ChunkEvidence], axis: ChunkAxis, chunk_rows: int | None = None
) -> str:
    fig = go.Figure()
    x = axis.x
    fig.add_scatter(x=x, y=_series(chunks, lambda c: c.rank_correlation), name="rank correlation")
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.rank_correlation_floor),
        name="rank correlation floor",
        mode="lines",
    )
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: c.parity_violation_ratio), name="score parity violations"
    )
    est = serving_gap_series(chunks, "estimated", chunk_rows)
    real = serving_gap_series(chunks, "realized", chunk_rows)
    fig.add_scatter(x=x, y=est, name="cumulative estimated gap (live - known-good)")
    fig.add_scatter(x=x, y=real, name="cumulative realized gap")
    return _html(
        fig, axis, "Shadow re-scoring: same rows, live vs known-good and vs its own artifact"
    )


def drift_heatmap(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    features = sorted({d.feature for c in chunks for d in c.drift})
    z, text = [], []
    for feature in features:
        row, labels = [], []
        for c in chunks:
            js = [d for d in c.drift if d.feature == feature and d.method == "jensen_shannon"]
            alerts = [d.method for d in c.drift if d.feature == feature and d.alert]
            row.append(js[0].value if js else None)
            labels.append("alert: " + ", ".join(alerts) if alerts else "")
        z.append(row)
        text.append(labels)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=axis.edges,
            y=features,
            text=text,
            colorscale="Reds",
            name="Jensen-Shannon distance",
            colorbar={"title": {"text": "JS"}, "thickness": 12},
            hovertemplate="%{y}: JS %{z:.3f} %{text}<extra></extra>",
        )
    )
    return _html(
        fig, axis, "Univariate drift: Jensen-Shannon distance per feature (hover: alerts)", 420
    )


def multivariate_figure(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    fig = go.Figure()
    x = axis.x
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: c.multivariate_error), name="reconstruction error"
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.multivariate_threshold),
        name="upper threshold",
        mode="lines",
        line={"color": "red", "width": 1},
    )
    return _html(fig, axis, "Multivariate drift: PCA data-reconstruction error")


def quality_figure(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    fig = go.Figure()
    x = axis.x
    features = sorted({f for c in chunks for f in c.missing_ratio})
    for f in features:
        missing = _series(chunks, lambda c, f=f: c.missing_ratio[f])
        if any(v for v in missing):
            fig.add_scatter(x=x, y=missing, name=f"{f} missing")
        outside = _series(chunks, lambda c, f=f: c.out_of_range_ratio[f])
        if any(v for v in outside):
            fig.add_scatter(x=x, y=outside, name=f"{f} out of range", line={"dash": "dot"})
    return _html(fig, axis, "Data quality: missing and out-of-range shares per feature")


def segment_figure(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    fig = go.Figure()
    x = axis.x
    names = sorted({s.segment for c in chunks for s in c.segments})
    for name in names:
        est, real = [], []
        for c in chunks:
            seg = next((s for s in c.segments if s.segment == name), None)
            e = seg.estimated.get("roc_auc") if seg else None
            est.append(e.value if e else None)
            real.append(seg.realized.get("roc_auc") if seg else None)
        fig.add_scatter(x=x, y=est, name=f"{name} estimated")
        fig.add_scatter(x=x, y=real, name=f"{name} realized", line={"dash": "dot"})
    return _html(fig, axis, "ROC AUC per slice (segment column)")


def reliance_figure(chunks: list[ChunkEvidence], axis: ChunkAxis) -> str:
    """Reliance per feature over chunks (mean |TreeSHAP contribution|), and the reference's."""
    fig = go.Figure()
    x = axis.x
    features = sorted({f for c in chunks for f in c.reliance})
    reference = chunks[-1].reference_reliance
    palette = plotly.colors.qualitative.Dark24
    for i, f in enumerate(features):
        color = palette[i % len(palette)]
        fig.add_scatter(
            x=x,
            y=_series(chunks, lambda c, f=f: c.reliance[f]),
            name=f,
            legendgroup=f,
            line={"color": color},
        )
        if f in reference:
            fig.add_scatter(
                x=x,
                y=[reference[f]] * len(x),
                name=f"{f} (reference)",
                legendgroup=f,
                showlegend=False,
                mode="lines",
                hoverinfo="skip",
                line={"color": color, "dash": "dot", "width": 1},
            )
    return _html(
        fig,
        axis,
        "Reliance per feature: mean |TreeSHAP contribution| (log-odds); dotted: the reference",
        420,
    )


def candidate_figure(chunks: Sequence[CandidateChunk], axis: ChunkAxis, version: str) -> str:
    """A candidate's ROC AUC per baseline chunk next to the baseline's on the same rows:
    estimated (CBPE, each on its own reference) with the candidate's sampling-error band, and
    realized on the chunks with labels."""

    def value(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else float(v)

    def labelled(v: float | None, c: CandidateChunk) -> float | None:
        return value(v) if c.labelled_rows > 0 else None

    est = [value(c.candidate_estimate) for c in chunks]
    err = [value(c.candidate_sampling_error) for c in chunks]
    upper = [None if e is None or s is None else e + 3 * s for e, s in zip(est, err, strict=True)]
    lower = [None if e is None or s is None else e - 3 * s for e, s in zip(est, err, strict=True)]
    fig = go.Figure()
    x = axis.x
    _band(fig, x, lower, upper, "candidate band (3 sampling errors)", "rgba(214,39,40,0.15)")
    fig.add_scatter(x=x, y=est, name=f"candidate {version}, estimated", line={"color": "#d62728"})
    fig.add_scatter(
        x=x,
        y=[value(c.baseline_estimate) for c in chunks],
        name="baseline, estimated",
        line={"color": "#1f77b4"},
    )
    fig.add_scatter(
        x=x,
        y=[labelled(c.candidate_realized, c) for c in chunks],
        name="candidate, realized",
        mode="lines+markers",
        line={"color": "#d62728", "dash": "dash"},
    )
    fig.add_scatter(
        x=x,
        y=[labelled(c.baseline_realized, c) for c in chunks],
        name="baseline, realized",
        mode="lines+markers",
        line={"color": "#1f77b4", "dash": "dash"},
    )
    return _html(fig, axis, f"Candidate {version}: ROC AUC per baseline chunk, same rows")
