"""`python -m monitor ...`: serve the monitor, write a report, read the audit log, status and
candidates, clear a rejection, declare a known-good version, run one reconcile pass.

Commands read the database directly (`--db`, default MONITOR_DB_PATH; PostgreSQL when
MONITOR_DATABASE_URL is set) or, for `audit`, a running monitor (`--url`). What a command asks of
the monitor (a candidate listing, a known-good declaration, a cleared rejection) is the service's
(monitor/service/), the same code the HTTP API calls; this module parses options and prints.
Telemetry is switched off by importing `monitor.core.settings` first.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.core.settings import MonitorSettings, StoreSettings, disable_telemetry

if TYPE_CHECKING:
    from monitor.store import Store

disable_telemetry()

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


def _settings(db: Path | None) -> MonitorSettings:
    return MonitorSettings(store=StoreSettings(db_path=db)) if db else MonitorSettings()


def _store(db: Path | None) -> Store:
    from monitor.store import database_url, open_store

    settings = _settings(db)
    path = settings.store.db_path
    if database_url(settings.store) is None and not path.exists():
        console.print(f"[red]no monitor database at {path}[/]")
        raise typer.Exit(2)
    return open_store(settings.store)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default MONITOR_HOST)"),
    port: int | None = typer.Option(None, help="Port (default MONITOR_PORT)"),
) -> None:
    """Run the monitor's HTTP server, analysis loop and operator loop."""
    from monitor.server import serve as run_server

    settings = MonitorSettings()
    setup_logging(settings.logging.level)
    run_server(settings, host=host, port=port)


@app.command()
def report(
    model: str = typer.Option(..., "--model", "-m", help="Model name"),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write"),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
) -> None:
    """Write the model's HTML report (candidates with the verdicts `candidates` prints)."""
    from monitor.analysis.report import render_report
    from monitor.service import candidates

    with _store(db) as store:
        if model not in store.models():
            console.print(f"[red]model {model!r} is unknown[/]")
            raise typer.Exit(1)
        verdicts = {
            c.version: c.verdict.model_dump()
            for c in candidates.listing(store, model).candidates
            if c.verdict is not None
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_report(store, model, verdicts=verdicts), encoding="utf-8")
    console.print(f"report written to {out}")


@app.command()
def audit(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model"),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
    url: str | None = typer.Option(
        None, help="Read from a running monitor instead (MONITOR_READER_TOKEN sent when set)"
    ),
    limit: int = typer.Option(50, help="Newest N records"),
) -> None:
    """Print the audit log (registrations, decisions, rollbacks, cleared rejections)."""
    if url:
        import httpx

        params: dict[str, Any] = {"limit": limit, **({"model": model} if model else {})}
        settings = MonitorSettings()  # the reader's (or operator's) token, when set
        token = settings.tokens.of("reader") or settings.tokens.of("operator")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(f"{url.rstrip('/')}/v1/audit", params=params, headers=headers, timeout=30)
        resp.raise_for_status()
        entries = resp.json()
    else:
        with _store(db) as store:
            entries = store.audit(model, limit=limit)
    table = Table(title=f"audit log{f' of {model}' if model else ''}")
    for column in ("id", "at", "kind", "model", "version", "details"):
        table.add_column(column, overflow="fold")
    shown = {"id", "at", "kind", "model", "version"}
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in shown and v is not None)
        table.add_row(
            str(e.get("id", "")),
            str(e.get("at", e.get("time", ""))),
            str(e.get("kind", "")),
            str(e.get("model", "")),
            str(e.get("version", e.get("fromVersion", "")) or ""),
            details,
        )
    console.print(table)


@app.command("clear-rejection")
def clear_rejection(
    model: str = typer.Option(..., "--model", "-m"),
    version: str = typer.Option(..., "--version", "-v"),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
    actor: str = typer.Option(os.environ.get("USER", "cli"), help="Recorded in the audit log"),
) -> None:
    """Let a rejected version run again: the operator stops rolling it back."""
    from monitor.service import rejections
    from monitor.service.errors import NotFoundError

    with _store(db) as store:
        try:
            cleared = rejections.clear_rejection(store, model, version, actor)
        except NotFoundError:
            cleared = False  # an unknown version is "not rejected" here, as it always was
        if cleared:
            console.print(f"rejection of {model}:{version} cleared")
        else:
            console.print(f"[yellow]{model}:{version} was not rejected[/]")
            raise typer.Exit(1)


known_good_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The known-good version of a model."
)
app.add_typer(known_good_app, name="known-good")


@known_good_app.command("set")
def known_good_set(
    model: str = typer.Argument(..., help="Model name"),
    version: str = typer.Argument(..., help="A registered version of it"),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
    actor: str = typer.Option(os.environ.get("USER", "cli"), help="Recorded in the audit log"),
) -> None:
    """Declare VERSION known-good: the baseline a release of MODEL is judged against and
    rolled back to, from its first release on (audited `known-good-declared`)."""
    from monitor.service import known_good
    from monitor.service.errors import ConflictError, NotFoundError

    with _store(db) as store:
        try:
            previous = known_good.declare_known_good(store, model, version, f"cli:{actor}")
        except NotFoundError as exc:
            console.print(f"[red]version: {exc}[/]")
            raise typer.Exit(2) from None
        except ConflictError:
            console.print(
                f"[red]version: {model}:{version} is rejected; clear it first (clear-rejection)[/]"
            )
            raise typer.Exit(2) from None
        console.print(f"{model}:{version} is known-good (before: {previous or 'none'})")


@app.command()
def status(
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
) -> None:
    """Versions with their state, records, chunking, rows waiting for a chunk and label
    coverage; then every ModelMonitor whose policy cannot work as written."""
    from monitor.memory.state import OperatorState

    with _store(db) as store:
        state = OperatorState(store)
        table = Table(title=f"monitor state in {store.location}")
        for column in ("model", "version", "state", "release", "records", "chunks", "labelled"):
            table.add_column(column, justify="right" if column in {"records", "chunks"} else "left")
        chunking = Table(title="chunking: rows waiting for a complete chunk")
        for column in ("model", "version", "chunks of", "pending", "needed"):
            chunking.add_column(
                column, justify="right" if column in {"pending", "needed"} else "left"
            )
        for v in store.versions():
            records, labelled = store.label_coverage(v.model, v.version)
            share = f"{labelled / records:.1%}" if records else "-"
            table.add_row(
                v.model,
                v.version,
                v.state,
                v.release or "",
                f"{records:,}",
                str(len(store.chunk_dicts(v.model, v.version))),
                f"{labelled:,} ({share})",
            )
            found = state.chunking(v.model, v.version)
            if found is not None:
                chunking.add_row(
                    v.model,
                    v.version,
                    _chunking(found),
                    f"{found.pending_rows:,}",
                    f"{found.rows_needed:,}",
                )
        console.print(table)
        if chunking.row_count:
            console.print(chunking)
        for model in store.models():
            kg = state.known_good(model)
            if kg is not None and kg.declared_by:
                console.print(f"{model}: known-good {kg.version} declared by {kg.declared_by}")
            report = state.policy_report(model)
            if report is None:
                continue
            for reason, message in report.problems:
                console.print(
                    f"[yellow]{model}: policy unusable "
                    f"(ModelMonitor {report.namespace}/{report.name}): {reason}: {message}[/]"
                )


@app.command()
def candidates(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model"),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="JSON as GET /v1/models/{model}/candidates answers (a list of those without --model)",
    ),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
) -> None:
    """Each candidate (a registered version judged on the baseline's rows before it serves)
    with its verdict: the operator's last, else computed now under the default candidate
    policy; the same-rows gap with its band, chunks / rows scored, chunks still needed."""
    from monitor.service import candidates as service
    from monitor.service.errors import NotFoundError

    with _store(db) as store:
        if model is not None:
            try:
                listings = [service.listing(store, model)]
            except NotFoundError as exc:
                console.print(f"[red]--model: {exc}[/]")
                raise typer.Exit(2) from None
        else:
            listings = service.listings(store)
    if as_json:
        docs = [lst.model_dump(mode="json") for lst in listings]
        typer.echo(json.dumps(docs[0] if model is not None else docs, indent=2))
        return
    table = Table(title=f"candidates{f' of {model}' if model else ''}")
    for column in ("model", "version", "by", "verdict", "gap and band", "chunks / rows", "needed"):
        table.add_column(column, justify="right" if column == "needed" else "left")
    table.add_column("why", overflow="fold")
    for lst in listings:
        for c in lst.candidates:
            v = c.verdict
            table.add_row(
                lst.model,
                c.version,
                "+".join(c.sources),
                f"{v.verdict} ({v.reason})" if v else "-",
                _gap(v),
                f"{v.chunks} / {v.rows:,}" if v else "-",
                str(v.chunks_needed) if v and v.chunks_needed is not None else "-",
                v.message if v else "",
            )
    if not table.row_count:
        console.print(f"no candidates{f' of {model}' if model else ''}")
        return
    console.print(table)


def _gap(verdict: Any) -> str:
    """The gap the verdict stands on (realized once labels decide), with its band."""
    if verdict is None:
        return "-"
    realized = verdict.basis == "realized"
    gap = verdict.realized_gap if realized else verdict.estimated_gap
    lower = verdict.realized_gap_lower if realized else verdict.estimated_gap_lower
    upper = verdict.realized_gap_upper if realized else verdict.estimated_gap_upper
    if gap is None:
        return "-"
    band = f" [{lower:+.4f}, {upper:+.4f}]" if lower is not None and upper is not None else ""
    basis = "realized" if realized else "estimated"
    return f"{gap:+.4f}{band} {basis} vs {verdict.baseline_version or '?'}"


def _chunking(status: Any) -> str:
    if status.mode == "period":
        start = f", chunk 0 from {status.first_period_start}" if status.first_period_start else ""
        return f"{status.period_seconds}s (>= {status.derived_rows or '?'} rows){start}"
    return f"{status.chunk_rows} rows"


@app.command()
def chunks(
    model: str = typer.Argument(..., help="Model name"),
    version: str | None = typer.Option(None, help="Only this version"),
    as_json: bool = typer.Option(False, "--json", help="The stored evidence as JSON"),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
) -> None:
    """Analysed chunks: number (0-based per version) and period, rows, labels, the
    estimated ROC AUC and the realized one with its sampling error."""
    from monitor.core.chunk_labels import chunk_label, realized_label

    with _store(db) as store:
        found = store.chunk_dicts(model, version)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(title=f"chunks of {model}")
    for column in ("version", "chunk", "rows", "labelled", "estimated", "realized ±se"):
        table.add_column(column, justify="left" if column in {"version", "chunk"} else "right")
    for c in found:
        est = ((c.get("estimated") or {}).get("roc_auc") or {}).get("value")
        shown = "-" if est is None else f"{est:.3f}"
        table.add_row(
            c["version"],
            chunk_label(c),
            str(c["rows"]),
            str(c["labelled_rows"]),
            shown,
            realized_label(c),
        )
    console.print(table)


@app.command()
def reconcile(
    once: bool = typer.Option(False, "--once", help="One pass over every ModelMonitor, then exit"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be done; change nothing anywhere"
    ),
    db: Path | None = typer.Option(None, help="Database (default MONITOR_DB_PATH)"),
) -> None:
    """Run the operator outside the server: each ModelMonitor read -> decide -> act.

    The cluster comes from MONITOR_KUBERNETES / MONITOR_KUBECONFIG (offline when none).
    With --dry-run nothing is patched, posted or stored: the decisions and patches are shown.
    """
    from monitor.loops.wiring import build_operator

    settings = _settings(db)
    setup_logging(settings.logging.level)
    with _store(db) as store:
        operator = build_operator(settings, store)
        while True:
            results = operator.plan_once() if dry_run else operator.reconcile_once()
            _print_results(results, dry_run)
            if once:
                failed = [r for r in results if r.outcome in ("failed", "invalid")]
                raise typer.Exit(1 if failed else 0)
            time.sleep(settings.operator.reconcile_interval_seconds)


def _print_results(results: list[Any], dry_run: bool) -> None:
    verb = "would do" if dry_run else "did"
    table = Table(title=f"reconcile: what the operator {verb}")
    for column in ("modelmonitor", "live", "action", "effect", "outcome", "why"):
        table.add_column(column, overflow="fold")
    for r in results:
        d = r.decision
        table.add_row(
            f"{r.namespace}/{r.name}",
            (d.from_version or "-") if d else "-",
            d.action if d else "-",
            d.effect if d else "-",
            r.outcome,
            r.error or (d.message if d else ""),
        )
    console.print(table)
    for r in results:
        if r.patch:
            console.print(f"JSON patch for {r.namespace}/{r.name}:")
            console.print_json(json.dumps(r.patch))
    if not results:
        console.print("no ModelMonitor found")


def main() -> None:
    """The CLI; an unusable setting is exit code 2 with one line naming it (no traceback)."""
    from pydantic import ValidationError

    from monitor.core.settings import ConfigError

    try:
        app()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(settings)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        console.print(f"[red]invalid settings: {problems}[/]")
        raise SystemExit(2) from None
    except ConfigError as exc:
        console.print(f"[red]invalid settings: {exc}[/]")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
