"""`modelguard status | chunks | decisions | audit | report | known-good set | clear-rejection`:
the monitor's read-outs and operator actions, from a laptop, over its HTTP API.

What `python -m monitor ...` does inside the monitor's image against its database, these do
against its URL (routes in monitor/api/routes/: reads.py, reports.py, operator.py; /metrics
for the chunking). Exit codes and tokens: bentos/cli/monitor_http.py. Reads send the reader
token and take `--json` (the monitor's answer as JSON); writes send the operator token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from bentos.cli import monitor_views as views
from bentos.cli.errors import BadInputError
from bentos.cli.monitor_http import (
    AS_JSON,
    MONITOR,
    READ_TOKEN,
    TIMEOUT,
    WRITE_TOKEN,
    base_url,
    call,
    checked_name,
    get_json,
    json_of,
    out,
    path_of,
    positive,
    run,
    wide,
)
from bentos.cli.monitor_status import gather_status

REPORT_TIMEOUT_SECONDS = 300.0  # the monitor builds a report in its analysis worker

known_good_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The known-good version of a model."
)


def _dump(body: Any) -> None:
    print(json.dumps(body, indent=2))


def _known_model(
    root: str,
    token: str | None,
    timeout: float,
    model: str,
    arg: str,
    version: str | None = None,
) -> None:
    """An empty read-out of an unknown model (or version) is a typo, not an answer: exit 2
    naming the argument."""
    known = [v for v in get_json(root, "/v1/models", token, timeout, list) if isinstance(v, dict)]
    versions = {v.get("version") for v in known if v.get("model") == model}
    if not versions:
        raise BadInputError(f"{arg} {model!r}: the monitor knows no such model")
    if version is not None and version not in versions:
        raise BadInputError(f"--version {version!r}: the monitor knows no such version of {model}")


def _setup(monitor: str, timeout: float) -> str:
    positive(timeout)
    return base_url(monitor)


# ---------------------------------------------------------------- reads


def status(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model"),
    monitor: str = MONITOR,
    token: str | None = READ_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """The monitor's versions: state, records, chunks, labels, rows waiting for a chunk.

    Then the declared known-good versions and every ModelMonitor whose policy cannot work
    as written."""

    def work() -> dict[str, Any]:
        root = _setup(monitor, timeout)
        name = None if model is None else checked_name(model, "--model")
        found = gather_status(root, token, timeout, name)
        if name is not None and not found["versions"]:
            raise BadInputError(f"--model {name!r}: the monitor knows no such model")
        return found

    body = run(work)
    if as_json:
        _dump(body)
        return
    views.print_status(wide(), body)


def chunks(
    model: str = typer.Argument(..., help="Model name"),
    version: str | None = typer.Option(None, "--version", "-v", help="Only this version"),
    monitor: str = MONITOR,
    token: str | None = READ_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """The model's analysed chunks, with estimated and realized ROC AUC.

    Each chunk's rows, time range, labelled rows and drifted features; `--json` prints the
    whole evidence of each chunk."""

    def work() -> list[Any]:
        root = _setup(monitor, timeout)
        name = checked_name(model, "MODEL")
        params = {} if version is None else {"version": checked_name(version, "--version")}
        found = get_json(
            root, path_of("v1", "models", name, "chunks"), token, timeout, list, params
        )
        if not found:
            _known_model(root, token, timeout, name, "MODEL", params.get("version"))
        return found

    body = run(work)
    if as_json:
        _dump(body)
        return
    views.print_chunks(wide(), model, version, body)


def decisions(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model"),
    monitor: str = MONITOR,
    token: str | None = READ_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """The operator's decisions (rollbacks, promotions, notices), each with its trigger."""

    def work() -> list[Any]:
        root = _setup(monitor, timeout)
        params = {} if model is None else {"model": checked_name(model, "--model")}
        found = get_json(root, "/v1/decisions", token, timeout, list, params)
        if not found and model is not None:
            _known_model(root, token, timeout, model, "--model")
        return found

    body = run(work)
    if as_json:
        _dump(body)
        return
    views.print_decisions(wide(), model, body)


def audit(
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model"),
    kind: str | None = typer.Option(None, "--kind", help="Only this kind, e.g. rollback"),
    limit: int = typer.Option(50, "--limit", help="Newest N records"),
    monitor: str = MONITOR,
    token: str | None = READ_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """The audit log (registrations, decisions, rollbacks, cleared rejections).

    Oldest first, the newest `--limit` records."""

    def work() -> list[Any]:
        root = _setup(monitor, timeout)
        if limit < 1:
            raise BadInputError(f"--limit {limit}: at least 1")
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = checked_name(model, "--model")
        if kind is not None:
            params["kind"] = kind
        found = get_json(root, "/v1/audit", token, timeout, list, params)
        if not found and model is not None:
            _known_model(root, token, timeout, model, "--model")
        return found

    body = run(work)
    if as_json:
        _dump(body)
        return
    views.print_audit(wide(), model, body)


def report(
    model: str = typer.Argument(..., help="Model name"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write (default: MODEL-report.html)"
    ),
    monitor: str = MONITOR,
    token: str | None = READ_TOKEN,
    timeout: float = typer.Option(REPORT_TIMEOUT_SECONDS, "--timeout", help="Seconds to wait"),
) -> None:
    """Download the model's HTML report (every version, candidates with their verdicts)."""
    target = output or Path(f"{model}-report.html")

    def work() -> int:
        root = _setup(monitor, timeout)
        name = checked_name(model, "MODEL")
        if target.is_dir():
            raise BadInputError(f"--output {target}: a directory; name the HTML file")
        resp = call("GET", root + path_of("reports", name), token, timeout)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.write_bytes(resp.content)
        except OSError as exc:
            raise BadInputError(f"--output {target}: cannot be written: {exc}") from exc
        return len(resp.content)

    size = run(work)
    out.print(Text(f"report written to {target} ({size / 1e6:.1f} MB)"), soft_wrap=True)


# ---------------------------------------------------------------- writes


def _post(monitor: str, timeout: float, token: str | None, *parts: str) -> dict[str, Any]:
    root = _setup(monitor, timeout)
    model, version, action = parts
    where = path_of(
        "v1",
        "models",
        checked_name(model, "MODEL"),
        "versions",
        checked_name(version, "VERSION"),
        action,
    )
    return json_of(call("POST", root + where, token, timeout), dict)


@known_good_app.command("set")
def known_good_set(
    model: str = typer.Argument(..., help="Model name"),
    version: str = typer.Argument(..., help="A registered version of it"),
    monitor: str = MONITOR,
    token: str | None = WRITE_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """Declare VERSION known-good: the baseline releases are judged against.

    From MODEL's first release on, a release is judged against it and rolled back to it
    (audited `known-good-declared`, by `api`). Refused (409) while VERSION is rejected:
    clear-rejection first."""
    body = run(lambda: _post(monitor, timeout, token, model, version, "known-good"))
    if as_json:
        _dump(body)
        return
    before = body.get("previous") or "none"
    out.print(Text(f"{model}:{version} is known-good (before: {before})"), soft_wrap=True)


def clear_rejection(
    model: str = typer.Argument(..., help="Model name"),
    version: str = typer.Argument(..., help="The rejected version"),
    monitor: str = MONITOR,
    token: str | None = WRITE_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """Let a rejected version run again: the operator stops rolling it back.

    Audited `rejection-cleared`. A version that was not rejected is left as it is (exit 0).
    """
    body = run(lambda: _post(monitor, timeout, token, model, version, "clear-rejection"))
    if as_json:
        _dump(body)
        return
    if body.get("cleared"):
        out.print(Text(f"rejection of {model}:{version} cleared"), soft_wrap=True)
    else:
        out.print(Text(f"{model}:{version} was not rejected", style="yellow"), soft_wrap=True)


def add_to(app: typer.Typer) -> None:
    """Register these commands on the `modelguard` app."""
    app.command("status")(status)
    app.command("chunks")(chunks)
    app.command("decisions")(decisions)
    app.command("audit")(audit)
    app.command("report")(report)
    app.command("clear-rejection")(clear_rejection)
    app.add_typer(known_good_app, name="known-good")
