"""The HTML report of one model: estimates, shadow comparison, drift, data quality, audit log.

Self-contained on purpose: plotly.js is inlined once (the cluster has no internet, so no
CDN), every figure is a plotly div. Figures come from the stored ChunkEvidence (every
version, every chunk ever analysed) -- the model's reliance per feature over chunks among
them, and a table explaining the newest degraded or drifting chunk -- and NannyML's own
`.plot()` figures (CBPE estimated vs realized, reconstruction drift) are added for the
newest chunks of each version, recomputed from the stored records with the fitted
calculators of a `VersionCache`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.offline

from monitor.analysis.shadow import cumulative_gap
from monitor.evidence import ChunkEvidence

log = logging.getLogger(__name__)

# NannyML figures are recomputed from stored rows: bounded to the newest chunks.
NANNYML_FIGURE_CHUNKS = 40

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}h3{margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;
font-size:.9rem;text-align:left}th{background:#f4f4f4}.note{color:#666;font-size:.9rem}
"""


def render_report(store: Any, model: str, cache: Any | None = None) -> str:
    """A self-contained HTML page for `model` (all its versions).

    Without a `cache` (the CLI) the versions are fitted here (about a second each) so the
    page still carries NannyML's own figures; the monitor passes its analysis cache.
    """
    if cache is None:
        from monitor.analysis.cycle import VersionCache

        cache = VersionCache(store)
    versions = store.versions(model)
    parts = [
        f"<h1>modelguard report: {_e(model)}</h1>",
        f"<p class=note>Generated {datetime.now(UTC).isoformat(timespec='seconds')}. "
        "Estimates are NannyML CBPE on the served scores (no labels needed); realized values "
        "appear once labels have arrived. Rollbacks compare a release with the known-good "
        "version scored in shadow on the same rows; drift explains, it does not decide.</p>",
        _versions_table(store, model, versions),
    ]
    for info in versions:
        chunks = store.chunks(model, info.version)
        if not chunks:
            continue
        parts.append(f"<h2>Version {_e(info.version)}</h2>")
        parts.extend(_version_section(chunks))
        parts.extend(_nannyml_figures(store, cache, model, info.version))
    parts.append(_audit_table(store, model))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>modelguard - {_e(model)}</title><style>{_STYLE}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>{body}</body></html>"
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _fig(fig: go.Figure, title: str, height: int = 360) -> str:
    fig.update_layout(title=title, height=height, margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def _versions_table(store: Any, model: str, versions: Sequence[Any]) -> str:
    rows = []
    for v in versions:
        chunks = store.chunks(model, v.version)
        est, real = cumulative_gap(chunks, "estimated"), cumulative_gap(chunks, "realized")
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_e(x)}</td>"
                for x in (
                    v.version,
                    v.release or "",
                    v.learner or "",
                    v.state,
                    v.records,
                    len(chunks),
                    _num(est),
                    _num(real),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "version",
            "release",
            "learner",
            "state",
            "records",
            "chunks",
            "cumulative est. gap vs known-good",
            "cumulative realized gap",
        )
    )
    return f"<h2>Versions</h2><table><tr>{head}</tr>{''.join(rows)}</table>"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _version_section(chunks: list[ChunkEvidence]) -> list[str]:
    # One evenly spaced point per chunk (a category axis, not a time axis): chunks are equal
    # in rows, not in time, and a replay on an accelerated clock packs months into minutes.
    x = [f"#{c.chunk_index} {c.start_time[:16].replace('T', ' ')}" for c in chunks]
    out = [_performance_figure(chunks, x), _estimate_error_figure(chunks, x)]
    out.append(_shadow_figure(chunks, x))
    out.append(_drift_heatmap(chunks, x))
    out.append(_reliance_figure(chunks, x))
    out.append(_multivariate_figure(chunks, x))
    out.append(_quality_figure(chunks, x))
    if any(c.segments for c in chunks):
        out.append(_segment_figure(chunks, x))
    last = chunks[-1]
    ranking = "".join(f"<tr><td>{_e(f)}</td><td>{s:.4f}</td></tr>" for f, s in last.drift_ranking)
    drifted = ", ".join(last.drifted_features) or "none"
    weight = "reliance share" if last.reliance else "importance"
    out.append(
        f"<h3>Latest chunk ({last.chunk_index}, {_e(last.start_time[:16])})</h3>"
        f"<p>Drifting features: {_e(drifted)}. Ranking ({weight} x correlation with the "
        f"estimated change x drift):</p><table><tr><th>feature</th><th>score</th></tr>"
        f"{ranking}</table>"
    )
    out.append(explain_chunk(chunks))
    return out


# A feature whose reliance moved by this share of the reference's total counts as moved.
RELIANCE_MOVED = 0.05


def _moved(c: ChunkEvidence) -> bool:
    """Degraded (the ROC AUC estimate alerts) or drifting (univariate or multivariate)."""
    roc = c.estimated.get("roc_auc")
    return bool((roc is not None and roc.alert) or c.drifted_features or c.multivariate_alert)


def explain_chunk(chunks: list[ChunkEvidence]) -> str:
    """One table for the newest degraded or drifting chunk: the features that moved, how much
    the model relies on them (reference vs now) and the estimated-performance change."""
    chunk = next((c for c in reversed(chunks) if _moved(c)), None)
    if chunk is None:
        return "<h3>Why a chunk moved</h3><p class=note>No degraded or drifting chunk.</p>"
    roc = chunk.estimated.get("roc_auc")
    est = None if roc is None else roc.value
    ref = chunk.reference_roc_auc
    change = None if est is None or ref is None else est - ref
    kg = chunk.known_good_estimated.get("roc_auc")
    parts = [
        f"estimated ROC AUC {_plain(est)} against {_plain(ref)} on the reference "
        f"(change {_num(change)}{', below its threshold' if roc is not None and roc.alert else ''})"
    ]
    if kg is not None and kg.value is not None and est is not None:
        parts.append(
            f"the known-good version on the same rows {_plain(kg.value)} "
            f"(live - known-good {_num(est - kg.value)})"
        )
    if chunk.multivariate_alert:
        parts.append("multivariate drift past its threshold")
    score = dict(chunk.drift_ranking)
    alerts: dict[str, list[str]] = {}
    js: dict[str, float] = {}
    for d in chunk.drift:
        if d.alert:
            alerts.setdefault(d.feature, []).append(d.method)
        if d.method == "jensen_shannon":
            js[d.feature] = d.value
    shift = chunk.attribution_shift
    features = sorted(
        set(alerts) | {f for f, v in shift.items() if abs(v) >= RELIANCE_MOVED},
        key=lambda f: (-score.get(f, 0.0), -abs(shift.get(f, 0.0)), f),
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "feature",
            "drift (JS)",
            "drift alerts",
            "reliance on the reference",
            "reliance now",
            "reliance change",
            "rank score",
        )
    )
    rows = []
    for f in features:
        ref_r, now_r = chunk.reference_reliance.get(f), chunk.reliance.get(f)
        unused = ref_r == 0 and now_r == 0
        cells = (
            f,
            _plain(js.get(f)),
            ", ".join(alerts.get(f, [])) or "-",
            "not used by the model" if unused else _plain(ref_r),
            "not used by the model" if unused else _plain(now_r),
            _num(shift.get(f)),
            f"{score[f]:.4f}" if f in score else "0 (not ranked)",
        )
        rows.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in cells) + "</tr>")
    table = (
        f"<table class=explain><tr>{head}</tr>{''.join(rows)}</table>"
        if rows
        else "<p class=note>No single feature moved.</p>"
    )
    return (
        f"<h3>Why chunk {chunk.chunk_index} ({_e(chunk.start_time[:16])}) moved</h3>"
        f"<p>{_e('; '.join(parts))}. Reliance: mean |TreeSHAP contribution| in log-odds on "
        f"{chunk.attribution_rows} sampled rows of the chunk and on the reference; its change "
        "as a share of the reference's total reliance. Features the model does not rely on "
        "do not rank, however much they drift.</p>"
        f"{table}"
    )


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _reliance_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    """Reliance per feature over chunks (mean |TreeSHAP contribution|), and the reference's."""
    fig = go.Figure()
    features = sorted({f for c in chunks for f in c.reliance})
    reference = chunks[-1].reference_reliance
    palette = plotly.colors.qualitative.Plotly
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
                line={"color": color, "dash": "dot", "width": 1},
            )
    return _fig(
        fig,
        "Reliance per feature: mean |TreeSHAP contribution| (log-odds); dotted: the reference",
        420,
    )


def _series(chunks: list[ChunkEvidence], get: Any) -> list[float | None]:
    out = []
    for c in chunks:
        try:
            value = get(c)
        except (KeyError, AttributeError):
            value = None
        out.append(None if value is None or not np.isfinite(value) else float(value))
    return out


def _performance_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    fig = go.Figure()
    upper = _series(chunks, lambda c: c.estimated["roc_auc"].upper)
    lower = _series(chunks, lambda c: c.estimated["roc_auc"].lower)
    fig.add_scatter(x=x, y=upper, line={"width": 0}, showlegend=False, hoverinfo="skip")
    fig.add_scatter(
        x=x, y=lower, fill="tonexty", line={"width": 0}, name="CBPE band (3 sampling errors)"
    )
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: c.estimated["roc_auc"].value), name="estimated"
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.realized["roc_auc"]),
        name="realized",
        mode="lines+markers",
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.known_good_estimated["roc_auc"].value),
        name="known-good, estimated (shadow)",
        line={"dash": "dot"},
    )
    fig.add_scatter(
        x=x,
        y=_series(chunks, lambda c: c.known_good_realized["roc_auc"]),
        name="known-good, realized (shadow)",
        line={"dash": "dash"},
    )
    threshold = _series(chunks, lambda c: c.estimated["roc_auc"].lower_threshold)
    fig.add_scatter(x=x, y=threshold, name="lower threshold", line={"color": "red", "width": 1})
    return _fig(fig, "ROC AUC per chunk: estimated vs realized, with the known-good shadow")


def _estimate_error_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    """The monitor's own track record: how wrong the estimate was, chunk by chunk."""
    fig = go.Figure()

    def off(c: ChunkEvidence, bound: str) -> float | None:
        e = c.estimated["roc_auc"]
        end = getattr(e, bound)
        return None if end is None or e.value is None else end - e.value

    def minus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    error = _series(chunks, lambda c: minus(c.realized["roc_auc"], c.estimated["roc_auc"].value))
    fig.add_scatter(x=x, y=_series(chunks, lambda c: off(c, "interval_upper")), name="interval")
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: off(c, "interval_lower")), name="interval (low)"
    )
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: off(c, "upper")), name="NannyML band", line={"dash": "dot"}
    )
    fig.add_scatter(x=x, y=_series(chunks, lambda c: off(c, "lower")), line={"dash": "dot"})
    fig.add_scatter(x=x, y=error, name="realized - estimated", mode="lines+markers")
    nowcast = _series(
        chunks, lambda c: minus(c.nowcast["roc_auc"].value, c.estimated["roc_auc"].value)
    )
    fig.add_scatter(x=x, y=nowcast, name="nowcast - estimated", line={"dash": "dash"})
    record = chunks[-1].track_record.get("roc_auc")
    note = ""
    if record is not None and record.interval_coverage is not None:
        note = (
            f" (last {record.chunks} labelled: MAE {record.mae:.3f}, bias {record.bias:+.3f},"
            f" {record.interval_coverage:.0%} inside the {record.level:.0%} interval)"
        )
    return _fig(fig, "Estimate error per chunk, with the interval and NannyML's band" + note)


def _shadow_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    fig = go.Figure()
    fig.add_scatter(x=x, y=_series(chunks, lambda c: c.rank_correlation), name="rank correlation")
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: c.rank_correlation_floor), name="rank correlation floor"
    )
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: c.parity_violation_ratio), name="score parity violations"
    )
    est = [cumulative_gap(chunks[: i + 1], "estimated") for i in range(len(chunks))]
    real = [cumulative_gap(chunks[: i + 1], "realized") for i in range(len(chunks))]
    fig.add_scatter(x=x, y=est, name="cumulative estimated gap (live - known-good)")
    fig.add_scatter(x=x, y=real, name="cumulative realized gap")
    return _fig(fig, "Shadow re-scoring: same rows, live vs known-good and vs its own artifact")


def _drift_heatmap(chunks: list[ChunkEvidence], x: list[str]) -> str:
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
    fig = go.Figure(go.Heatmap(z=z, x=x, y=features, text=text, colorscale="Reds"))
    return _fig(fig, "Univariate drift: Jensen-Shannon distance per feature (hover: alerts)", 420)


def _multivariate_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    fig = go.Figure()
    fig.add_scatter(x=x, y=_series(chunks, lambda c: c.multivariate_error), name="error")
    fig.add_scatter(
        x=x, y=_series(chunks, lambda c: c.multivariate_threshold), name="upper threshold"
    )
    return _fig(fig, "Multivariate drift: PCA data-reconstruction error")


def _quality_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    fig = go.Figure()
    features = sorted({f for c in chunks for f in c.missing_ratio})
    for f in features:
        missing = _series(chunks, lambda c, f=f: c.missing_ratio[f])
        if any(v for v in missing):
            fig.add_scatter(x=x, y=missing, name=f"{f} missing")
        outside = _series(chunks, lambda c, f=f: c.out_of_range_ratio[f])
        if any(v for v in outside):
            fig.add_scatter(x=x, y=outside, name=f"{f} out of range", line={"dash": "dot"})
    return _fig(fig, "Data quality: missing and out-of-range shares per feature")


def _segment_figure(chunks: list[ChunkEvidence], x: list[str]) -> str:
    fig = go.Figure()
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
    return _fig(fig, "ROC AUC per slice (segment column)")


def _nannyml_figures(store: Any, cache: Any, model: str, version: str) -> list[str]:
    """NannyML's own plots for the newest chunks, recomputed from stored records."""
    from monitor.analysis.estimation import CHUNK_KEY, LABEL

    try:
        fitted = cache.get(model, version)
        size = fitted.chunk_size
        total = store.count_records(model, version)
        complete = total // size
        if complete == 0:
            return []
        first = max(0, complete - NANNYML_FIGURE_CHUNKS) * size
        head = store.records_frame(model, version, limit=first) if first else None
        after = int(head["seq"].max()) if head is not None and len(head) else 0
        rows = store.records_frame(model, version, after_seq=after, limit=complete * size - first)
        rows[CHUNK_KEY] = np.arange(len(rows)) // size
        rows[LABEL] = rows[LABEL].astype("Float64").astype(float)
        cbpe = fitted.estimator.estimate_result(rows, with_labels=True)
        multi = fitted.multivariate.result(rows)
        return [
            "<h3>NannyML figures (newest chunks)</h3>",
            _fig(cbpe.filter(metrics=["roc_auc"]).plot(), "NannyML CBPE: ROC AUC", 420),
            _fig(multi.plot(), "NannyML data-reconstruction drift", 420),
        ]
    except Exception as exc:  # a report must render even if a figure cannot
        log.warning("NannyML figures for %s:%s unavailable: %s", model, version, exc)
        return [f"<p class=note>NannyML figures unavailable: {_e(exc)}</p>"]


def _audit_table(store: Any, model: str) -> str:
    entries = store.audit(model=model, limit=200)
    if not entries:
        return "<h2>Audit log</h2><p class=note>No entries.</p>"
    keys = sorted({k for e in entries for k in e if k != "model"})[:8]
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(e.get(k, ''))}</td>" for k in keys) + "</tr>" for e in entries
    )
    return f"<h2>Audit log</h2><table><tr>{head}</tr>{rows}</table>"
