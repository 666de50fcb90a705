"""Turn the monitor's per-chunk evidence (JSON from its API) into the closing table and errors."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from monitor.core.chunk_labels import chunk_label, realized_label

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


# Every column of the per-chunk table, in order: what the CSV next to the demo's report holds.
FULL_COLUMNS = [
    "release",
    "version",
    "chunk",
    "period",
    "first_seq",
    "last_seq",
    "rows",
    "labelled_rows",
    "estimated",
    "estimated_lower",
    "estimated_upper",
    "interval_lower",
    "interval_upper",
    "interval_level",
    "realized",
    "realized_sampling_error",
    "period_start",
    "period_end",
    "partial",
    "known_good_version",
    "known_good_estimated",
    "known_good_realized",
    "gap_estimated",
    "gap_realized",
    "rank_correlation",
    "parity_violation_ratio",
    "drifting",
    "decision",
]
# The terminal table: what a reader needs to follow the story, within 120 columns; a chunk by
# rows is named by its number and the event-time day it starts (the CSV has its whole range).
DECISION_WIDTH = 31  # "dry-run-rollback (gate) -> good" on one line


def _number(x: Any) -> float | None:
    return None if x is None or np.isnan(float(x)) else float(x)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def chunk_rows(
    chunks: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    sim_times: dict[str, list[pd.Timestamp]] | None = None,
    chunk_size: int = 500,
) -> list[dict[str, Any]]:
    """One dict per chunk (FULL_COLUMNS), in arrival order: the full table."""
    decided = decisions_by_chunk(chunks, audit)
    out = []
    for c in sorted(chunks, key=lambda c: c["first_seq"]):
        est = (c.get("estimated") or {}).get("roc_auc") or {}
        live, shadow = _value(c.get("estimated")), _value(c.get("known_good_estimated"))
        real, shadow_real = _value(c.get("realized")), _value(c.get("known_good_realized"))
        index = int(c["chunk_index"])
        period = sim_period(sim_times or {}, c["version"], index, chunk_size)
        # a chunk by period names its period; one by rows the event-time days it spans
        start = period.split("..")[0]
        label = chunk_label(c) if c.get("period_start") or period == "-" else f"{index} {start}"
        out.append(
            {
                "release": release_name(c["version"]),
                "version": c["version"],
                "chunk": index,
                "period": period,
                "first_seq": c.get("first_seq"),
                "last_seq": c.get("last_seq"),
                "rows": c.get("rows"),
                "labelled_rows": c.get("labelled_rows"),
                "estimated": _number(live),
                "estimated_lower": _number(est.get("lower")),  # NannyML's +-3 sampling errors
                "estimated_upper": _number(est.get("upper")),
                "interval_lower": _number(est.get("interval_lower")),  # calibrated, at its level
                "interval_upper": _number(est.get("interval_upper")),
                "interval_level": _number(est.get("interval_level")),
                "realized": _number(real),
                "realized_sampling_error": _number(
                    (c.get("realized_sampling_error") or {}).get("roc_auc")
                ),
                "period_start": c.get("period_start") or None,
                "period_end": c.get("period_end") or None,
                "partial": bool(c.get("partial")),
                "chunk_label": label,
                "realized_label": realized_label(c, sep="", error_digits=2),
                "known_good_version": c.get("known_good_version"),
                "known_good_estimated": _number(shadow),
                "known_good_realized": _number(shadow_real),
                "gap_estimated": _number(_diff(live, shadow)),
                "gap_realized": _number(_diff(real, shadow_real)),
                "rank_correlation": _number(c.get("rank_correlation")),
                "parity_violation_ratio": _number(c.get("parity_violation_ratio")),
                "drifting": sorted({d["feature"] for d in c.get("drift", []) if d.get("alert")}),
                "decision": decided.get((c["version"], index), ""),
            }
        )
    return out


def chunk_table(
    chunks: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    sim_times: dict[str, list[pd.Timestamp]] | None = None,
    chunk_size: int = 500,
) -> Table:
    """The per-chunk story in at most 120 terminal columns (the rest: `write_chunk_csv`)."""
    rows = chunk_rows(chunks, audit, sim_times, chunk_size)
    levels = [r["interval_level"] for r in rows if r["interval_level"] is not None]
    level = f"{levels[-1]:.0%}" if levels else "band"
    table = Table(
        title=f"Per chunk of {chunk_size} rows: ROC AUC, label-free estimate vs realized",
        caption=f"estimate [{level}]: the label-free estimate and its interval; realized: on "
        "the labelled rows, ±its sampling error; # from: the chunk's number and the event-time "
        "day it starts; kg: the known-good version's estimate on the same rows; gap: estimate "
        "minus known-good; drift: a feature past its drift threshold",
    )
    table.add_column("release", max_width=16, overflow="fold")
    table.add_column("# from", justify="right", no_wrap=True)
    table.add_column(escape(f"estimate [{level}]"), no_wrap=True)
    table.add_column("realized", justify="right")
    table.add_column("kg", justify="right")
    table.add_column("gap", justify="right")
    table.add_column("drift")
    table.add_column("decision", max_width=DECISION_WIDTH, overflow="fold")
    for row in rows:
        # The calibrated interval when the monitor has one; NannyML's band otherwise.
        low, high = row["interval_lower"], row["interval_upper"]
        if low is None or high is None:
            low, high = row["estimated_lower"], row["estimated_upper"]
        band = (
            f"{_fmt(row['estimated'])} [{_fmt(low, 2)},{_fmt(high, 2)}]"
            if row["estimated"] is not None
            else "-"
        )
        cells = [
            row["release"],
            row["chunk_label"],
            band,
            row["realized_label"],
            _fmt(row["known_good_estimated"]),
            _fmt(row["gap_estimated"]),
            "yes" if row["drifting"] else "no",
            row["decision"],
        ]
        table.add_row(*(escape(cell) for cell in cells))  # `[...]` is text, not rich markup
    return table


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return round(value, 4) if isinstance(value, float) else value


def write_chunk_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """The full per-chunk table (every FULL_COLUMNS column) as CSV; drifting features `;`-joined."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FULL_COLUMNS)
        writer.writeheader()
        for row in rows:
            cells = {k: _cell(row.get(k)) for k in FULL_COLUMNS}
            cells["drifting"] = ";".join(row.get("drifting") or [])
            writer.writerow(cells)
    return path


_METRIC_NAMES = {"roc_auc": "ROC AUC"}


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
