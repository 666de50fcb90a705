"""Tables of the monitor's read-outs, as `python -m monitor` prints them (rich).

Each function takes the monitor's JSON as `modelguard ... --json` prints it; a field the
monitor does not send is shown as `-`, so an older or newer monitor still renders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

NONE = "-"


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else NONE


def _when(value: Any) -> str:
    """An ISO-8601 time as `YYYY-MM-DD HH:MM` UTC (naive ones are UTC already)."""
    if not isinstance(value, str) or not value:
        return NONE
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _span(start: Any, end: Any) -> str:
    """`2013-07-01 00:00 - 07-02 09:00`: the end without the year when it is the same."""
    first, last = _when(start), _when(end)
    if first[:5] == last[:5] and first != NONE:
        last = last[5:]
    return f"{first} - {last}"


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else NONE


# ---------------------------------------------------------------- status


def print_status(console: Console, body: dict[str, Any]) -> None:
    versions = body.get("versions") or []
    table = Table(title="monitor state", title_justify="left")
    for column in ("model", "version", "state", "release", "records", "chunks", "labelled"):
        table.add_column(column, justify="right" if column in {"records", "chunks"} else "left")
    chunking = Table(title="chunking: rows waiting for a complete chunk", title_justify="left")
    for column in ("model", "version", "chunks of", "pending", "needed"):
        chunking.add_column(column, justify="left" if column in {"model", "version"} else "right")
    for v in versions:
        chunked, labelled = v.get("chunked_rows") or 0, v.get("labelled_rows") or 0
        share = f"{labelled / chunked:.1%}" if chunked else NONE
        table.add_row(
            str(v.get("model")),
            str(v.get("version")),
            str(v.get("state")),
            str(v.get("release") or ""),
            _int(v.get("records")),
            _int(v.get("chunks")),
            f"{labelled:,} of {chunked:,} ({share})",
        )
        found = v.get("chunking")
        if found:
            per = found.get("rows_per_chunk")
            chunking.add_row(
                str(v.get("model")),
                str(v.get("version")),
                f"{per:,} rows" if isinstance(per, int) else NONE,
                _int(found.get("pending_rows")),
                _int(found.get("rows_needed")),
            )
    if not versions:
        console.print(Text("no model versions yet"))
    else:
        console.print(table)
        console.print(Text("labelled: rows with a label among the rows in chunks", style="dim"))
    if chunking.row_count:
        console.print(chunking)
    for kg in body.get("known_good") or []:
        console.print(
            Text(f"{kg['model']}: known-good {kg['version']} declared by {kg['declared_by']}"),
            soft_wrap=True,
        )
    for p in body.get("policy_problems") or []:
        where = f"{p.get('namespace') or '?'}/{p.get('modelmonitor') or '?'}"
        for reason, message in p.get("problems") or []:
            console.print(
                Text(
                    f"{p['model']}: policy unusable (ModelMonitor {where}): {reason}: {message}",
                    style="yellow",
                ),
                soft_wrap=True,
            )


# ---------------------------------------------------------------- chunks


def _estimate(chunk: dict[str, Any], metric: str = "roc_auc") -> str:
    """The estimate with its calibrated interval (NannyML's band when there is none)."""
    est = (chunk.get("estimated") or {}).get(metric) or {}
    value = est.get("value")
    if not isinstance(value, int | float):
        return NONE
    low, high = est.get("interval_lower"), est.get("interval_upper")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        low, high = est.get("lower"), est.get("upper")
    band = f" [{low:.3f}, {high:.3f}]" if isinstance(low, int | float) else ""
    flag = " !" if est.get("alert") else ""
    return f"{value:.3f}{band}{flag}"


def _drifted(chunk: dict[str, Any]) -> str:
    names = sorted({str(d.get("feature")) for d in chunk.get("drift") or [] if d.get("alert")})
    if chunk.get("multivariate_alert"):
        names.append("(multivariate)")
    return ", ".join(names) or NONE


def print_chunks(
    console: Console, model: str, version: str | None, chunks: list[dict[str, Any]]
) -> None:
    if not chunks:
        console.print(Text(f"{model}{':' + version if version else ''}: no chunks analysed yet"))
        return
    table = Table(title=f"{model}: chunks, ROC AUC (times UTC)", title_justify="left")
    for column in ("version", "chunk", "rows", "records from - to", "estimated [interval]"):
        table.add_column(column, no_wrap=True, justify="right" if column == "rows" else "left")
    table.add_column("realized", justify="right", no_wrap=True)
    table.add_column("labelled", justify="right", no_wrap=True)
    table.add_column("drifted")
    for c in chunks:
        table.add_row(
            str(c.get("version")),
            str(c.get("chunk_index")),
            _int(c.get("rows")),
            _span(c.get("start_time"), c.get("end_time")),
            _estimate(c),
            _num((c.get("realized") or {}).get("roc_auc")),
            _int(c.get("labelled_rows")),
            _drifted(c),
        )
    console.print(table)
    console.print(Text("!: past NannyML's alert threshold", style="dim"))


# ---------------------------------------------------------------- audit and decisions


SHOWN = {"id", "at", "kind", "model", "version"}  # as `python -m monitor audit` shows them


def _details(entry: dict[str, Any], also: set[str] = SHOWN) -> str:
    return ", ".join(f"{k}={v}" for k, v in entry.items() if k not in also and v is not None)


def print_audit(console: Console, model: str | None, entries: list[dict[str, Any]]) -> None:
    table = Table(title=f"audit log{f' of {model}' if model else ''}", title_justify="left")
    for column in ("id", "at", "kind", "model", "version", "details"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            str(e.get("id", "")),
            str(e.get("at", e.get("time", ""))),
            str(e.get("kind", "")),
            str(e.get("model", "")),
            str(e.get("version", e.get("fromVersion", "")) or ""),
            _details(e),
        )
    console.print(table)


DECISION_SHOWN = {*SHOWN, "time", "trigger", "fromVersion", "toVersion", "reason", "namespace"}


def print_decisions(console: Console, model: str | None, entries: list[dict[str, Any]]) -> None:
    if not entries:
        console.print(Text(f"no decisions{f' about {model}' if model else ''}"))
        return
    table = Table(
        title=f"operator decisions{f' about {model}' if model else ''}", title_justify="left"
    )
    for column in ("id", "at (UTC)", "kind", "model", "trigger"):
        table.add_column(column, no_wrap=True)
    for column in ("from -> to", "reason", "details"):
        table.add_column(column, overflow="fold")
    for e in entries:
        moved = f"{e.get('fromVersion') or NONE} -> {e.get('toVersion') or NONE}"
        table.add_row(
            str(e.get("id", "")),
            _when(e.get("time") or e.get("at")),
            str(e.get("kind", "")),
            str(e.get("model", "")),
            str(e.get("trigger") or NONE),
            moved,
            str(e.get("reason") or ""),
            _details(e, DECISION_SHOWN | {"modelmonitor"}),
        )
    console.print(table)
