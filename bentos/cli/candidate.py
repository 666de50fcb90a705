"""`modelguard candidate add | list | remove`: candidates, through the monitor's HTTP API.

A candidate is a model version registered with the monitor but not serving: the monitor
scores it on the live rows of the serving known-good version and gives it a verdict
(Better, Equivalent, Worse, Inconclusive, Incompatible; docs/your-model.md#candidates).

- `add NAME[:VERSION]` builds the registration of a packaged model from the BentoML store
  (`bentos.packaging`, the very payload a predictor posts to `POST /v1/models`) and posts it
  to `POST /v1/models/{model}/candidates`; `--existing` declares a version the monitor
  already has (`PUT /v1/models/{model}/candidates/{version}`, no body, no store needed).
- `list MODEL` reads `GET /v1/models/{model}/candidates`: a table, or the JSON (`--json`).
- `remove MODEL VERSION` is `DELETE /v1/models/{model}/candidates/{version}`.

Exit codes: 0 done; 2 the command must change -- a bad argument (the message names it) or a
4xx from the monitor other than 408/429 (its ErrorBody printed: `error`, then each
`loc: msg`), since repeating the same command cannot succeed; 1 trying again later may help
-- the monitor unreachable, timed out, 408/429 or 5xx. The token travels only in the
Authorization header and is never printed.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bentos.cli.errors import EXIT_BAD_INPUT, BadInputError
from contract.registration import NAME_PATTERN

EXIT_MONITOR = 1  # unreachable, timed out, 408/429, 5xx: trying again later may help
RETRYABLE_4XX = {408, 429}
TOKEN_ENV = "MODELGUARD_MONITOR_TOKEN"  # noqa: S105 -- the variable's name, not a token
URL_ENV = "MODELGUARD_MONITOR_URL"
ADD_TIMEOUT_SECONDS = 120.0  # the monitor loads and scores the booster in a child first
TIMEOUT_SECONDS = 30.0

candidate_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Candidates: versions the monitor judges on the serving version's live rows.",
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

MONITOR = typer.Option(
    ...,
    "--monitor",
    envvar=URL_ENV,
    help="The monitor's base URL, e.g. http://localhost:8080",
)
TOKEN = typer.Option(
    None,
    "--token",
    envvar=TOKEN_ENV,
    show_default=False,
    help="Bearer token: the operator token for add and remove; the reader or operator "
    "token for list when the monitor has a reader token",
)


class MonitorError(Exception):
    """The monitor could not be asked or refused; `code` is the exit code."""

    def __init__(self, message: str, code: int, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []


def _fail(message: str, code: int, details: list[str] | None = None) -> NoReturn:
    err.print(Text(f"error: {message}", style="red"), soft_wrap=True)
    for line in details or []:
        err.print(Text(f"  {line}"), soft_wrap=True)
    raise typer.Exit(code)


def _run(work: Any) -> Any:
    """BadInputError -> exit 2, MonitorError -> its code, each with its message on stderr."""
    try:
        return work()
    except BadInputError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except MonitorError as exc:
        _fail(str(exc), exc.code, exc.details)


# ---------------------------------------------------------------- arguments


def base_url(value: str) -> str:
    """`--monitor`: an http(s) URL with a host; no query, fragment or credentials."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInputError(f"--monitor {value!r}: an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise BadInputError("--monitor: no credentials in the URL; pass the token with --token")
    if parts.query or parts.fragment:
        raise BadInputError(f"--monitor {value!r}: no query or fragment, just the base URL")
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError as exc:
        raise BadInputError(f"--monitor {value!r}: {exc}") from exc
    return value.strip().rstrip("/")


def checked_name(value: str, argument: str) -> str:
    if not re.match(NAME_PATTERN, value):
        raise BadInputError(
            f"{argument} {value!r}: lower-case letters, digits, '-', '.', '_' "
            "(at most 63, starting and ending with a letter or digit)"
        )
    return value


def split_tag(tag: str) -> tuple[str, str | None]:
    """`NAME` or `NAME:VERSION` -> (name, version or None); `latest` counts as no version."""
    name, _, version = tag.partition(":")
    checked_name(name, "MODEL")
    if not version or version == "latest":
        return name, None
    return name, checked_name(version, "MODEL's version")


def _headers(token: str | None) -> dict[str, str]:
    token = (token or "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


# ---------------------------------------------------------------- HTTP


def call(
    method: str,
    url: str,
    token: str | None,
    timeout: float,
    content: bytes | None = None,
) -> httpx.Response:
    """One request; a 2xx answer is returned, anything else raised as a MonitorError."""
    headers = _headers(token)
    if content is not None:
        headers["Content-Type"] = "application/json"
    where = f"{method} {url}"
    try:
        with httpx.Client(timeout=timeout) as client:
            resp = client.request(method, url, content=content, headers=headers)
    except httpx.ConnectError as exc:
        raise MonitorError(
            f"cannot reach the monitor: {where}: connection failed ({_reason(exc)}); is it "
            "running, and is --monitor right?",
            EXIT_MONITOR,
        ) from None
    except httpx.TimeoutException:
        raise MonitorError(
            f"{where}: no answer within {timeout:g} s (--timeout)", EXIT_MONITOR
        ) from None
    except httpx.HTTPError as exc:
        raise MonitorError(f"{where}: {type(exc).__name__}: {_reason(exc)}", EXIT_MONITOR) from None
    if resp.is_success:
        return resp
    code = EXIT_BAD_INPUT
    if resp.status_code >= 500 or resp.status_code in RETRYABLE_4XX or resp.status_code < 400:
        code = EXIT_MONITOR
    summary, details = error_body(resp)
    hint = []
    if resp.status_code in (401, 403):
        hint = [f"(pass the right token with --token or ${TOKEN_ENV})"]
    raise MonitorError(
        f"the monitor answered HTTP {resp.status_code} to {method} {urlsplit(url).path}: {summary}",
        code,
        details + hint,
    )


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def error_body(resp: httpx.Response) -> tuple[str, list[str]]:
    """The monitor's ErrorBody as (`error`, ["loc: msg", ...]); raw text when it is none.

    A single entry that `error` already spells out is not repeated."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        lines = [
            f"{e.get('loc', '?')}: {e.get('msg', '')}"
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        if lines == [body["error"]]:
            lines = []  # one part at fault: `error` already reads "loc: msg"
        return body["error"], lines
    text = resp.text.strip().replace("\n", " ")
    return (text[:300] or resp.reason_phrase or "no body"), []


def candidates_url(monitor: str, model: str, version: str | None = None) -> str:
    url = f"{base_url(monitor)}/v1/models/{quote(model, safe='')}/candidates"
    return url if version is None else f"{url}/{quote(version, safe='')}"


# ---------------------------------------------------------------- add


def store_payload(tag: str) -> tuple[str, str, bytes]:
    """(model, version, registration JSON) of a packaged model in the BentoML store."""
    import bentoml
    from pydantic import ValidationError

    from bentos.packaging import registration_from_bento_model

    try:
        model = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as exc:
        raise BadInputError(
            f"MODEL {tag!r}: no such model in the BentoML store (modelguard package writes it;"
            " --existing declares a version the monitor already has)"
        ) from exc
    except (ValueError, bentoml.exceptions.BentoMLException) as exc:
        raise BadInputError(f"MODEL {tag!r}: not a model tag NAME[:VERSION]: {exc}") from exc
    try:
        reg = registration_from_bento_model(model)
    except (ValidationError, KeyError, OSError, ValueError) as exc:
        raise BadInputError(
            f"MODEL {model.tag}: not a registrable model ({type(exc).__name__}); "
            f"run `modelguard validate {model.tag}`"
        ) from exc
    return reg.model, reg.version, reg.model_dump_json(by_alias=True).encode()


@candidate_app.command("add")
def add(
    model: str = typer.Argument(
        ..., help="NAME or NAME:VERSION in the BentoML store (with --existing: NAME:VERSION)"
    ),
    monitor: str = MONITOR,
    token: str | None = TOKEN,
    existing: bool = typer.Option(
        False,
        "--existing",
        help="The version is already registered with the monitor: declare it (PUT), upload nothing",
    ),
    timeout: float = typer.Option(ADD_TIMEOUT_SECONDS, "--timeout", help="Seconds to wait"),
) -> None:
    """Make a model version a candidate: register it with the monitor and declare it."""

    def work() -> tuple[str, str, httpx.Response]:
        root = base_url(monitor)
        _positive(timeout)
        name, version = split_tag(model)
        if existing:
            if version is None:
                raise BadInputError(
                    f"MODEL {model!r}: --existing needs NAME:VERSION (the version the monitor has)"
                )
            resp = call("PUT", candidates_url(root, name, version), token, timeout)
            return name, version, resp
        name, version, body = store_payload(model)
        return name, version, call("POST", candidates_url(root, name), token, timeout, body)

    name, version, resp = _run(work)
    try:
        answer = resp.json()
    except ValueError:
        answer = {}
    registration = answer.get("registration") if isinstance(answer, dict) else None
    if resp.status_code == 201:
        how = {
            "created": "registered and declared",
            "unchanged": "declared; the monitor had this registration",
        }.get(str(registration), "declared")
        out.print(Text(f"{name}:{version} is now a candidate ({how})"), soft_wrap=True)
    else:
        out.print(Text(f"{name}:{version} was already a candidate"), soft_wrap=True)


def _positive(timeout: float) -> None:
    if not timeout > 0:
        raise BadInputError(f"--timeout {timeout:g}: a number of seconds above 0")


# ---------------------------------------------------------------- list


VERDICT_STYLE = {
    "Better": "green",
    "Equivalent": "cyan",
    "Worse": "red",
    "Inconclusive": "yellow",
    "Incompatible": "magenta",
}


def _signed(value: Any) -> str:
    return f"{float(value):+.4f}" if isinstance(value, int | float) else "—"


def gap_cell(v: dict[str, Any]) -> tuple[str, str]:
    """(gap [lower, upper], basis): the gap the verdict stands on, candidate minus baseline
    ROC AUC on the same rows, realized once labels decide, else estimated."""
    basis = (
        "realized"
        if v.get("basis") == "realized" and v.get("realized_gap") is not None
        else "estimated"
    )
    gap, lower, upper = (v.get(f"{basis}_gap{s}") for s in ("", "_lower", "_upper"))
    if gap is None:
        return "—", str(v.get("basis") or "none")
    if lower is None or upper is None:
        return _signed(gap), basis
    return f"{_signed(gap)} [{_signed(lower)}, {_signed(upper)}]", basis


def render(body: dict[str, Any]) -> None:
    model = body.get("model", "?")
    entries = [c for c in body.get("candidates") or [] if isinstance(c, dict)]
    if not entries:
        out.print(Text(f"{model}: no candidates"))
        return
    verdicts = [c.get("verdict") or {} for c in entries]
    levels = {v.get("level") for v in verdicts if isinstance(v.get("level"), int | float)}
    level = f"{next(iter(levels)):.0%} " if len(levels) == 1 else ""
    baselines = sorted({str(v["baseline_version"]) for v in verdicts if v.get("baseline_version")})
    title = f"{model}: candidates" + (f" vs {', '.join(baselines)}" if baselines else "")
    table = Table(title=title, title_justify="left")
    table.add_column("version", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column(f"gap [{level}band]", no_wrap=True)
    table.add_column("basis")
    table.add_column("chunks/rows", justify="right", no_wrap=True)
    table.add_column("needed", justify="right")
    table.add_column("reason", overflow="fold")
    messages = []
    for entry, v in zip(entries, verdicts, strict=True):
        version = str(entry.get("version", "?"))
        if not v:
            row = ["—", "—", "—", "—", "not judged yet"]
            table.add_row(version, Text("pending", style="dim"), *row)
            continue
        name = str(v.get("verdict", "?"))
        needed = v.get("chunks_needed")
        table.add_row(
            version,
            Text(name, style=VERDICT_STYLE.get(name, "")),
            *gap_cell(v),
            f"{v.get('chunks', 0)}/{v.get('rows', 0)}",
            "—" if needed is None else str(needed),
            str(v.get("reason", "")),
        )
        if v.get("message"):
            messages.append(f"{version}: {v['message']}")
    # Piped or captured output is not cut to 80 columns; a terminal keeps its own width.
    console = out if out.is_terminal else Console(highlight=False, width=160)
    console.print(table)
    for line in messages:
        console.print(Text(line), soft_wrap=True)


@candidate_app.command("list")
def list_(
    model: str = typer.Argument(..., help="Model name, e.g. flight_delay"),
    monitor: str = MONITOR,
    token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print the monitor's JSON answer"),
    timeout: float = typer.Option(TIMEOUT_SECONDS, "--timeout", help="Seconds to wait"),
) -> None:
    """The model's candidates with their latest verdicts (gap = candidate - baseline ROC AUC)."""

    def work() -> Any:
        _positive(timeout)
        url = candidates_url(monitor, checked_name(model, "MODEL"))
        resp = call("GET", url, token, timeout)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise MonitorError(f"GET {url}: the answer is not a JSON object", EXIT_MONITOR)
        return body

    body = _run(work)
    if as_json:
        print(json.dumps(body, indent=2))
        return
    render(body)


# ---------------------------------------------------------------- remove


@candidate_app.command("remove")
def remove(
    model: str = typer.Argument(..., help="Model name"),
    version: str = typer.Argument(..., help="The candidate version"),
    monitor: str = MONITOR,
    token: str | None = TOKEN,
    timeout: float = typer.Option(TIMEOUT_SECONDS, "--timeout", help="Seconds to wait"),
) -> None:
    """Stop judging a version; its registration stays.

    Refused (409) while a ModelMonitor's spec.candidates declares it: remove it there.
    """

    def work() -> None:
        _positive(timeout)
        name = checked_name(model, "MODEL")
        call(
            "DELETE",
            candidates_url(monitor, name, checked_name(version, "VERSION")),
            token,
            timeout,
        )

    _run(work)
    out.print(Text(f"{model}:{version} is no longer a candidate"), soft_wrap=True)
