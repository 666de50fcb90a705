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

Exit codes and tokens are every monitor command's (bentos/cli/monitor_http.py): 0 done,
2 a bad argument or a refusal by the monitor (4xx), 1 trying again later may help. `add` and
`remove` send the operator token, `list` the reader's; never printed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.table import Table
from rich.text import Text

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
    json_of,
    out,
    positive,
    run,
    wide,
)

ADD_TIMEOUT_SECONDS = 120.0  # the monitor loads and scores the booster in a child first

candidate_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Candidates: versions the monitor judges on the serving version's live rows.",
)


# ---------------------------------------------------------------- arguments


def split_tag(tag: str) -> tuple[str, str | None]:
    """`NAME` or `NAME:VERSION` -> (name, version or None); `latest` counts as no version."""
    name, _, version = tag.partition(":")
    checked_name(name, "MODEL")
    if not version or version == "latest":
        return name, None
    return name, checked_name(version, "MODEL's version")


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
    token: str | None = WRITE_TOKEN,
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
        positive(timeout)
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

    name, version, resp = run(work)
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
    console = wide()
    console.print(table)
    for line in messages:
        console.print(Text(line), soft_wrap=True)


@candidate_app.command("list")
def list_(
    model: str = typer.Argument(..., help="Model name, e.g. flight_delay"),
    monitor: str = MONITOR,
    token: str | None = READ_TOKEN,
    as_json: bool = AS_JSON,
    timeout: float = TIMEOUT,
) -> None:
    """The model's candidates with their latest verdicts (gap = candidate - baseline ROC AUC)."""

    def work() -> dict[str, Any]:
        positive(timeout)
        url = candidates_url(monitor, checked_name(model, "MODEL"))
        return json_of(call("GET", url, token, timeout), dict)

    body = run(work)
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
    token: str | None = WRITE_TOKEN,
    timeout: float = TIMEOUT,
) -> None:
    """Stop judging a version; its registration stays.

    Refused (409) while a ModelMonitor's spec.candidates declares it: remove it there.
    """

    def work() -> None:
        positive(timeout)
        name = checked_name(model, "MODEL")
        call(
            "DELETE",
            candidates_url(monitor, name, checked_name(version, "VERSION")),
            token,
            timeout,
        )

    run(work)
    out.print(Text(f"{model}:{version} is no longer a candidate"), soft_wrap=True)
