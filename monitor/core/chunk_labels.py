"""How a chunk is named wherever its number is shown (CLI, demo table, report data): its
0-based number per version and, for a chunk by period, its date range -- half-open
`[start, end)`, dates alone when both ends fall on midnight -- and `partial` when the
version's rows cover only part of it. A realized figure is shown with its sampling error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.core.times import parse_time


def period_label(chunk: Mapping[str, Any]) -> str:
    """`[2023-01-01, 2023-01-31)` (`, partial` appended), or "" for a chunk by rows."""
    start, end = parse_time(chunk.get("period_start")), parse_time(chunk.get("period_end"))
    if start is None or end is None:
        return ""
    midnight = all(t.hour == t.minute == t.second == 0 for t in (start, end))
    fmt = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"
    label = f"[{start.strftime(fmt)}, {end.strftime(fmt)})"
    return f"{label}, partial" if chunk.get("partial") else label


def chunk_label(chunk: Mapping[str, Any]) -> str:
    """`3 [2023-04-01, 2023-05-01)` for a chunk by period, `3` for one by rows."""
    period = period_label(chunk)
    index = str(chunk.get("chunk_index", "?"))
    return f"{index} {period}" if period else index


def realized_label(
    chunk: Mapping[str, Any],
    metric: str = "roc_auc",
    digits: int = 3,
    sep: str = " ",
    error_digits: int | None = None,
) -> str:
    """`0.812 ±0.041` (the realized figure and its sampling error), or `-` while undefined."""
    value = (chunk.get("realized") or {}).get(metric)
    if value is None:
        return "-"
    error = (chunk.get("realized_sampling_error") or {}).get(metric)
    shown = f"{float(value):.{digits}f}"
    return shown if error is None else f"{shown}{sep}±{float(error):.{error_digits or digits}f}"
