"""Turn the monitor's per-chunk evidence (JSON from its API) into the closing table and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table


def _value(block: dict[str, Any] | None, metric: str = "roc_auc") -> float | None:
    if not block:
        return None
    got = block.get(metric)
    if isinstance(got, dict):
        got = got.get("value")
    return None if got is None else float(got)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or np.isnan(x) else f"{x:.{digits}f}"


def decisions_by_chunk(audit: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """(version, chunk index) -> short decision text, from audit records that name a chunk."""
    out: dict[tuple[str, int], str] = {}
    for entry in audit:
        version = entry.get("from_version") or entry.get("version") or ""
        chunk = entry.get("chunk_index")
        action = entry.get("action") or entry.get("event") or "decision"
        trigger = entry.get("trigger") or ""
        target = entry.get("to_version") or ""
        if chunk is not None:
            text = f"{action} ({trigger}) -> {target}" if target else f"{action} ({trigger})"
            out[(str(version), int(chunk))] = text
    return out


def chunk_table(chunks: list[dict[str, Any]], audit: list[dict[str, Any]]) -> Table:
    table = Table(
        title="Per chunk: label-free estimate vs realized ROC AUC, shadow, drift, decision"
    )
    for col in [
        "version",
        "chunk",
        "period",
        "est. AUC [band]",
        "realized",
        "known-good est.",
        "known-good real.",
        "rank corr",
        "parity viol.",
        "drifting features",
        "decision",
    ]:
        table.add_column(col, overflow="fold")
    decided = decisions_by_chunk(audit)
    for c in sorted(chunks, key=lambda c: c["first_seq"]):
        est = c.get("estimated", {}).get("roc_auc") or {}
        band = (
            f"{_fmt(est.get('value'))} [{_fmt(est.get('lower'), 2)}, {_fmt(est.get('upper'), 2)}]"
            if est
            else "-"
        )
        drifted = sorted({d["feature"] for d in c.get("drift", []) if d.get("alert")})
        table.add_row(
            c["version"],
            str(c["chunk_index"]),
            f"{str(c.get('start_time', ''))[:10]}..{str(c.get('end_time', ''))[5:10]}",
            band,
            _fmt(_value(c.get("realized"))),
            _fmt(_value(c.get("known_good_estimated"))),
            _fmt(_value(c.get("known_good_realized"))),
            _fmt(c.get("rank_correlation")),
            _fmt(c.get("parity_violation_ratio"), 4),
            ", ".join(drifted[:4]) + ("..." if len(drifted) > 4 else ""),
            decided.get((c["version"], int(c["chunk_index"])), ""),
        )
    return table


def estimation_errors(
    chunks: list[dict[str, Any]], reference_auc: dict[str, float] | None = None
) -> dict[str, float | int | None]:
    """MAE of the label-free estimate per chunk vs realized, for live and known-good shadow."""

    def mae(pairs: list[tuple[float | None, float | None]]) -> float | None:
        diffs = [abs(a - b) for a, b in pairs if a is not None and b is not None]
        return round(float(np.mean(diffs)), 4) if diffs else None

    live = [(_value(c.get("estimated")), _value(c.get("realized"))) for c in chunks]
    shadow = [
        (_value(c.get("known_good_estimated")), _value(c.get("known_good_realized")))
        for c in chunks
    ]
    out: dict[str, float | int | None] = {
        "live_estimate_mae": mae(live),
        "known_good_estimate_mae": mae(shadow),
        "chunks_with_realized": sum(1 for _, r in live if r is not None),
    }
    if reference_auc:
        naive = [(reference_auc.get(c["version"]), _value(c.get("realized"))) for c in chunks]
        out["naive_reference_mae"] = mae(naive)
    gaps_est = [
        (_value(c.get("estimated")) or np.nan) - (_value(c.get("known_good_estimated")) or np.nan)
        for c in chunks
    ]
    gaps_real = [
        (_value(c.get("realized")) or np.nan) - (_value(c.get("known_good_realized")) or np.nan)
        for c in chunks
    ]
    est = np.array(gaps_est, dtype=float)
    real = np.array(gaps_real, dtype=float)
    ok = ~np.isnan(est) & ~np.isnan(real)
    out["cumulative_estimated_gap"] = (
        round(float(np.nanmean(est)), 4) if (~np.isnan(est)).any() else None
    )
    out["cumulative_realized_gap"] = (
        round(float(np.nanmean(real)), 4) if (~np.isnan(real)).any() else None
    )
    out["gap_estimate_mae"] = (
        round(float(np.mean(np.abs(est[ok] - real[ok]))), 4) if ok.any() else None
    )
    return out
