"""Talking to the monitor over its HTTP API: the URL, the tokens, one request, its errors.

Every `modelguard` command that goes through the monitor (`candidate ...`, `status`,
`chunks`, `decisions`, `audit`, `report`, `known-good set`, `clear-rejection`) uses this
module, so each answers the same failure with the same exit code and message:

- 0 done;
- 2 the command must change: a bad argument (the message names it) or a 4xx from the
  monitor other than 408/429 (its ErrorBody printed: `error`, then each `loc: msg`), since
  repeating the same command cannot succeed;
- 1 trying again later may help: the monitor unreachable, timed out, 408/429 or 5xx.

Tokens come from `--token` or the environment (reads: the reader token, writes: the
operator token; `MODELGUARD_MONITOR_TOKEN` for both) and travel only in the Authorization
header: never printed, never in a URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import typer
from rich.console import Console
from rich.text import Text

from bentos.cli.errors import EXIT_BAD_INPUT, BadInputError
from contract.registration import NAME_PATTERN

EXIT_MONITOR = 1  # unreachable, timed out, 408/429, 5xx: trying again later may help
RETRYABLE_4XX = {408, 429}
URL_ENV = "MODELGUARD_MONITOR_URL"
TOKEN_ENV = "MODELGUARD_MONITOR_TOKEN"  # noqa: S105 -- the variable's name, not a token
READER_TOKEN_ENV = "MODELGUARD_MONITOR_READER_TOKEN"  # noqa: S105 -- a name
OPERATOR_TOKEN_ENV = "MODELGUARD_MONITOR_OPERATOR_TOKEN"  # noqa: S105 -- a name
TIMEOUT_SECONDS = 30.0

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")

MONITOR = typer.Option(
    ...,
    "--monitor",
    envvar=URL_ENV,
    help="The monitor's base URL, e.g. http://localhost:8080",
)
# Reads accept the reader or the operator token; writes only the operator's.
READ_TOKEN = typer.Option(
    None,
    "--token",
    envvar=[READER_TOKEN_ENV, TOKEN_ENV, OPERATOR_TOKEN_ENV],
    show_default=False,
    help="Bearer token: the monitor's reader (or operator) token, when it has a reader token",
)
WRITE_TOKEN = typer.Option(
    None,
    "--token",
    envvar=[OPERATOR_TOKEN_ENV, TOKEN_ENV],
    show_default=False,
    help="Bearer token: the monitor's operator token",
)
TIMEOUT = typer.Option(TIMEOUT_SECONDS, "--timeout", help="Seconds to wait for the monitor")
AS_JSON = typer.Option(False, "--json", help="Print the monitor's JSON answer")


class MonitorError(Exception):
    """The monitor could not be asked or refused; `code` is the exit code."""

    def __init__(self, message: str, code: int, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []


def fail(message: str, code: int, details: list[str] | None = None) -> NoReturn:
    err.print(Text(f"error: {message}", style="red"), soft_wrap=True)
    for line in details or []:
        err.print(Text(f"  {line}"), soft_wrap=True)
    raise typer.Exit(code)


def run(work: Callable[[], T]) -> T:
    """BadInputError -> exit 2, MonitorError -> its code, each with its message on stderr."""
    try:
        return work()
    except BadInputError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    except MonitorError as exc:
        fail(str(exc), exc.code, exc.details)


def wide() -> Console:
    """Piped or captured output is not cut to 80 columns (160, or $COLUMNS when set); a
    terminal keeps its own width."""
    if out.is_terminal:
        return out
    return Console(highlight=False, width=None if os.environ.get("COLUMNS") else 160)


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


def positive(timeout: float) -> None:
    if not timeout > 0:
        raise BadInputError(f"--timeout {timeout:g}: a number of seconds above 0")


def path_of(*parts: str) -> str:
    """`/v1/models/{model}/...` with each part quoted as one path segment."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


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
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    """One request; a 2xx answer is returned, anything else raised as a MonitorError."""
    headers = _headers(token)
    if content is not None:
        headers["Content-Type"] = "application/json"
    where = f"{method} {url}"
    try:
        with httpx.Client(timeout=timeout) as client:
            resp = client.request(method, url, content=content, headers=headers, params=params)
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
        hint = [
            f"(pass the right token with --token, ${READER_TOKEN_ENV} for reads, "
            f"${OPERATOR_TOKEN_ENV} for changes, or ${TOKEN_ENV})"
        ]
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


def json_of(resp: httpx.Response, kind: type[T]) -> T:
    """The answer's JSON, which must be a `kind` (dict or list); else exit 1."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, kind):
        what = "object" if kind is dict else "array"
        raise MonitorError(
            f"{resp.request.method} {resp.request.url}: the answer is not a JSON {what}",
            EXIT_MONITOR,
        )
    return body


def get_json(
    root: str,
    path: str,
    token: str | None,
    timeout: float,
    kind: type[T],
    params: dict[str, Any] | None = None,
) -> T:
    resp = call("GET", root + path, token, timeout, params=params)
    return json_of(resp, kind)
