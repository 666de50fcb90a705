"""The HTML report of one model: estimates, shadow comparison, drift, data quality, candidates,
audit log.

Self-contained on purpose: plotly.js is inlined once (the cluster has no internet, so no
CDN; how, and why it stays small: monitor/analysis/charts.py), every figure is a plotly div
on the chunks' event-time axis (the builders: monitor/analysis/figures.py). Figures come
from the stored ChunkEvidence (every version, every chunk ever analysed) -- the model's
reliance per feature over chunks among them, and a table explaining the newest degraded or
drifting chunk -- and NannyML's own `.plot()` figures (CBPE estimated vs realized,
reconstruction drift) are added for the newest chunks of each version, recomputed from the
stored records with the fitted calculators of a `VersionCache`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitor.analysis import charts, figures
from monitor.analysis.charts import ChunkAxis, chunk_span
from monitor.analysis.ports import AnalysisStore, VersionView
from monitor.analysis.report_ranges import outside_expected_table
from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import serving_gap
from monitor.core.times import iso
from monitor.memory.candidates import CandidateState
from monitor.memory.state import OperatorState

log = logging.getLogger(__name__)

# NannyML figures are recomputed from stored rows: bounded to the newest chunks.
NANNYML_FIGURE_CHUNKS = 40

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}h3{margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;
font-size:.9rem;text-align:left}th{background:#f4f4f4}.note{color:#666;font-size:.9rem}
h4.figure{margin:1.6rem 0 .2rem;font-size:1rem;font-weight:600}
"""


def render_report(
    store: AnalysisStore,
    model: str,
    cache: Any | None = None,
    verdicts: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """A self-contained HTML page for `model` (all its versions, then its candidates).

    Without a `cache` (the CLI) the versions are fitted here (about a second each) so the
    page still carries NannyML's own figures; the monitor passes its analysis cache.
    `verdicts`: candidate verdicts (`CandidateVerdict.to_json()`) the caller computed, over
    the operator's stored ones (the decision is a layer above this one).
    """
    if cache is None:
        from monitor.analysis.versions import VersionCache

        cache = VersionCache(store)
    versions = store.versions(model)
    parts = [
        f"<h1>modelguard report: {_e(model)}</h1>",
        charts.STATUS,
        f"<p class=note>Generated {iso(datetime.now(UTC), 'seconds')}. "
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
        parts.extend(_version_section(chunks, _chunk_rows(store, model, info.version)))
        parts.extend(_nannyml_figures(store, cache, model, info.version))
    parts.extend(candidates_section(store, model, verdicts))
    parts.append(_audit_table(store, model))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>modelguard - {_e(model)}</title><style>{_STYLE}</style>"
        f"</head><body>{body}{charts.page_scripts()}</body></html>"
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _versions_table(store: AnalysisStore, model: str, versions: Sequence[VersionView]) -> str:
    rows = []
    for v in versions:
        chunks = store.chunks(model, v.version)
        est, real = version_gaps(store, model, v.version, chunks)
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


def version_gaps(
    store: Any, model: str, version: str, chunks: Sequence[ChunkEvidence]
) -> tuple[float | None, float | None]:
    """The version's cumulative same-rows gaps (estimated, realized) as the exported series
    has them: `monitor.core.gap.serving_gap` at the version's chunk size."""
    basis = _chunk_rows(store, model, version)
    return serving_gap(chunks, "estimated", basis).gap, serving_gap(chunks, "realized", basis).gap


def _chunk_rows(store: Any, model: str, version: str) -> int | None:
    """The rows the version's chunks are expected to hold (what the gap's filter scales
    with), as the analysis last stored it."""
    status = OperatorState(store).chunking(model, version)
    return status.basis_rows if status is not None else None


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _version_section(chunks: list[ChunkEvidence], chunk_rows: int | None) -> list[str]:
    # Each chunk at the middle of the event-time range it covers, its range shaded.
    x = ChunkAxis(chunks)
    out = [figures.performance_figure(chunks, x), figures.estimate_error_figure(chunks, x)]
    out.append(figures.shadow_figure(chunks, x, chunk_rows))
    out.append(figures.drift_heatmap(chunks, x))
    out.append(figures.reliance_figure(chunks, x))
    out.append(figures.multivariate_figure(chunks, x))
    out.append(figures.quality_figure(chunks, x))
    out.append(outside_expected_table(chunks))
    if any(c.segments for c in chunks):
        out.append(figures.segment_figure(chunks, x))
    last = chunks[-1]
    ranking = "".join(f"<tr><td>{_e(f)}</td><td>{s:.4f}</td></tr>" for f, s in last.drift_ranking)
    drifted = ", ".join(last.drifted_features) or "none"
    weight = "reliance share" if last.reliance else "importance"
    out.append(
        f"<h3>Latest chunk ({_e(_span_text(last))})</h3>"
        f"<p>Drifting features: {_e(drifted)}. Ranking ({weight} x correlation with the "
        f"estimated change x drift):</p><table><tr><th>feature</th><th>score</th></tr>"
        f"{ranking}</table>"
    )
    out.append(drift_settings_table(chunks))
    out.append(explain_chunk(chunks))
    return out


def drift_settings_table(chunks: Sequence[ChunkEvidence]) -> str:
    """The ModelMonitor's per-feature drift settings the newest chunk was analysed under
    (`spec.drift.features`); nothing when every feature is on the defaults."""
    settings = chunks[-1].drift_settings if chunks else {}
    if not settings:
        return ""
    rows = []
    for feature, s in sorted(settings.items()):
        if s.get("ignore"):
            effect = "ignored: no drift alert, not ranked, not in the multivariate drift"
        else:
            ref = s.get("referenceThreshold")
            own = s.get("threshold")
            effect = f"only {s.get('method')} alerts" + (
                f", above {own} (reference: {_plain(ref)})" if own is not None else ""
            )
        rows.append(f"<tr><td>{_e(feature)}</td><td>{_e(effect)}</td></tr>")
    return (
        f"<h3>Drift settings in force (chunk {chunks[-1].chunk_index})</h3>"
        "<p class=note>From the ModelMonitor's spec.drift.features; every other feature "
        "alerts on each method above mean + 3 sd of the reference chunks (chi2: p < 0.05).</p>"
        f"<table><tr><th>feature</th><th>setting</th></tr>{''.join(rows)}</table>"
    )


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
        f"<h3>Why chunk {_e(_span_text(chunk))} moved</h3>"
        f"<p>{_e('; '.join(parts))}. Reliance: mean |TreeSHAP contribution| in log-odds on "
        f"{chunk.attribution_rows} sampled rows of the chunk and on the reference; its change "
        "as a share of the reference's total reliance. Features the model does not rely on "
        "do not rank, however much they drift.</p>"
        f"{table}"
    )


def _span_text(chunk: ChunkEvidence) -> str:
    """ "3, 2013-07-01 10:00 to 2013-07-14 09:00": the chunk's number and event-time range."""
    start, end = (t[:16].replace("T", " ") for t in chunk_span(chunk))
    return f"{chunk.chunk_index}, {start} to {end}" if start else str(chunk.chunk_index)


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _nannyml_figures(store: AnalysisStore, cache: Any, model: str, version: str) -> list[str]:
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
            charts.figure_html(
                cbpe.filter(metrics=["roc_auc"]).plot(), "NannyML CBPE: ROC AUC", 420
            ),
            charts.figure_html(multi.plot(), "NannyML data-reconstruction drift", 420),
        ]
    except Exception as exc:  # a report must render even if a figure cannot
        log.warning("NannyML figures for %s:%s unavailable: %s", model, version, exc)
        return [f"<p class=note>NannyML figures unavailable: {_e(exc)}</p>"]


def candidates_section(
    store: AnalysisStore, model: str, verdicts: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """The "Candidates" section: per declared candidate, its ROC AUC against the baseline's
    per chunk on the same rows (its scored chunks of the baseline its verdict stands on) and
    its verdict line; nothing when the model has no candidate."""
    state = CandidateState(store)
    entries = state.entries(model)
    if not entries:
        return []
    known = {**state.verdicts(model), **(verdicts or {})}
    out = [
        "<h2>Candidates</h2><p class=note>Registered versions that do not serve, each scored "
        "on the baseline's logged rows: its CBPE estimate next to the baseline's on the very "
        "same rows (world drift moves both), realized once labels arrived.</p>"
    ]
    for version, entry in sorted(entries.items()):
        out.append(
            f"<h3>Candidate {_e(version)}</h3><p class=note>Declared by "
            f"{_e(' and '.join(entry.sources))} since {_e(entry.added_at[:19])}.</p>"
        )
        out.append(f"<p class=verdict>{_e(verdict_line(known.get(version)))}</p>")
        chunks = state.chunks(model, version)
        if not chunks:
            out.append("<p class=note>No baseline chunk scored yet.</p>")
            continue
        baseline = max(chunks, key=lambda c: c.analysed_at).baseline_version
        mine = [c for c in chunks if c.baseline_version == baseline]
        x = ChunkAxis(mine)
        out.append(figures.candidate_figure(mine, x, version))
        if len(mine) < len(chunks):
            out.append(
                f"<p class=note>Baseline {_e(baseline)}; {len(chunks) - len(mine)} chunks "
                "scored on earlier baselines are not shown.</p>"
            )
    return out


def verdict_line(verdict: Mapping[str, Any] | None) -> str:
    """The verdict in one line, from `CandidateVerdict.to_json()`: "Worse (WorseOnSameRows):
    estimated gap -0.0600 [-0.0620, -0.0580] at 90% vs v1 over 4 chunks / 2000 rows. ..."."""
    if not verdict:
        return "Verdict: none yet (no ModelMonitor has judged it)."
    head = f"Verdict: {verdict.get('verdict')} ({verdict.get('reason')})"
    basis = verdict.get("basis")
    prefix = "realized" if basis == "realized" else "estimated"
    gap = verdict.get(f"{prefix}_gap")
    lower, upper = verdict.get(f"{prefix}_gap_lower"), verdict.get(f"{prefix}_gap_upper")
    said = ""
    if gap is not None:
        band = ""
        if lower is not None and upper is not None:
            band = f" [{lower:+.4f}, {upper:+.4f}] at {float(verdict.get('level') or 0):.0%}"
        said = (
            f": {prefix} gap {gap:+.4f}{band} vs {verdict.get('baseline_version')} over "
            f"{verdict.get('chunks')} chunks / {verdict.get('rows')} rows"
        )
    needed = verdict.get("chunks_needed")
    more = f"; about {needed} more chunks would decide" if needed else ""
    return f"{head}{said}{more}. {verdict.get('message', '')}".strip()


def _audit_table(store: AnalysisStore, model: str) -> str:
    entries = store.audit(model=model, limit=200)
    if not entries:
        return "<h2>Audit log</h2><p class=note>No entries.</p>"
    keys = sorted({k for e in entries for k in e if k != "model"})[:8]
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(e.get(k, ''))}</td>" for k in keys) + "</tr>" for e in entries
    )
    return f"<h2>Audit log</h2><table><tr>{head}</tr>{rows}</table>"
