"""Turn the monitor's per-chunk evidence (JSON from its API) into the closing table and errors."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

DECISION_KINDS = {
    "rollback",
    "dry-run-rollback",
    "known-good",
    "retraining-recommended",
    "rollback-unavailable",
}


def _value(block: dict[str, Any] | None, metric: str = "roc_auc") -> float | None:
    if not block:
        return None
    got = block.get(metric)
    if isinstance(got, dict):
        got = got.get("value")
    return None if got is None else float(got)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or np.isnan(x) else f"{x:.{digits}f}"


def release_name(version: str) -> str:
    """`no-key-features-dad282b7c0` -> `no-key-features` (the hash is in the version column)."""
    return re.sub(r"-[0-9a-f]{10}$", "", version)


def decisions_by_chunk(
    chunks: list[dict[str, Any]], audit: list[dict[str, Any]]
) -> dict[tuple[str, int], str]:
    """(version, chunk index) -> decision text: each decision belongs to the newest chunk of
    the version it concerns that had been analysed when it was taken."""
    out: dict[tuple[str, int], str] = {}
    for entry in audit:
        kind = entry.get("kind")
        if kind not in DECISION_KINDS:
            continue
        version = str(entry.get("fromVersion") or entry.get("version") or "")
        when = str(entry.get("time") or entry.get("at") or "")
        mine = [c for c in chunks if c["version"] == version]
        before = [c for c in mine if str(c.get("analysed_at", "")) <= when] or mine[:1]
        if not before:
            continue
        chunk = max(int(c["chunk_index"]) for c in before)
        text = str(kind)
        if entry.get("trigger"):
            text += f" ({entry['trigger']})"
        if entry.get("toVersion") and kind in ("rollback", "dry-run-rollback"):
            text += f" -> {release_name(str(entry['toVersion']))}"
        key = (version, chunk)
        out[key] = f"{out[key]}; {text}" if key in out else text
    return out


def sim_period(times: dict[str, list[pd.Timestamp]], version: str, index: int, size: int) -> str:
    rows = times.get(version, [])[index * size : (index + 1) * size]
    if not rows:
        return "-"
    return f"{rows[0]:%m-%d}..{rows[-1]:%m-%d}"


def chunk_table(
    chunks: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    sim_times: dict[str, list[pd.Timestamp]] | None = None,
    chunk_size: int = 500,
) -> Table:
    table = Table(
        title="Per chunk of 500 rows: label-free estimate vs realized ROC AUC, "
        "known-good shadow on the same rows, drift, decision"
    )
    for col in [
        "release",
        "#",
        "2013",
        "estimated [band]",
        "realized",
        "known-good est.",
        "known-good real.",
        "gap est.",
        "rank corr",
        "parity viol.",
        "drifting",
        "decision",
    ]:
        table.add_column(col, overflow="fold")
    decided = decisions_by_chunk(chunks, audit)
    for c in sorted(chunks, key=lambda c: c["first_seq"]):
        est = c.get("estimated", {}).get("roc_auc") or {}
        band = (
            f"{_fmt(est.get('value'))} [{_fmt(est.get('lower'), 2)},{_fmt(est.get('upper'), 2)}]"
            if est
            else "-"
        )
        live, shadow = _value(c.get("estimated")), _value(c.get("known_good_estimated"))
        gap = None if live is None or shadow is None else live - shadow
        drifted = sorted({d["feature"] for d in c.get("drift", []) if d.get("alert")})
        index = int(c["chunk_index"])
        table.add_row(
            release_name(c["version"]),
            str(index),
            sim_period(sim_times or {}, c["version"], index, chunk_size),
            band,
            _fmt(_value(c.get("realized"))),
            _fmt(shadow),
            _fmt(_value(c.get("known_good_realized"))),
            _fmt(gap),
            _fmt(c.get("rank_correlation")),
            _fmt(c.get("parity_violation_ratio"), 4),
            ",".join(drifted[:3]) + ("..." if len(drifted) > 3 else ""),
            decided.get((c["version"], index), ""),
        )
    return table


def estimation_errors(
    chunks: list[dict[str, Any]], reference_auc: dict[str, float] | None = None
) -> dict[str, float | int | None]:
    """MAE of the label-free estimate per chunk vs realized, for live and known-good shadow."""

    def mae(pairs: list[tuple[float | None, float | None]]) -> float | None:
        diffs = [abs(a - b) for a, b in pairs if a is not None and b is not None]
        return round(float(np.mean(diffs)), 4) if diffs else None

    def diff(c: dict[str, Any], live: str, shadow: str) -> float:
        a, b = _value(c.get(live)), _value(c.get(shadow))
        return np.nan if a is None or b is None else a - b

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
    est = np.array([diff(c, "estimated", "known_good_estimated") for c in chunks], dtype=float)
    real = np.array([diff(c, "realized", "known_good_realized") for c in chunks], dtype=float)
    both = ~np.isnan(est) & ~np.isnan(real)
    out["cumulative_estimated_gap"] = _mean(est)
    out["cumulative_realized_gap"] = _mean(real)
    out["gap_estimate_mae"] = (
        round(float(np.mean(np.abs(est[both] - real[both]))), 4) if both.any() else None
    )
    return out


def _mean(values: np.ndarray) -> float | None:
    ok = ~np.isnan(values)
    return round(float(values[ok].mean()), 4) if ok.any() else None
