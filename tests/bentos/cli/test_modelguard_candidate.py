"""`modelguard candidate add | list | remove` run (typer's CliRunner) against real HTTP servers.

- The REAL monitor (`python -m monitor serve`, one token per role and a reader token): toy
  models trained here and packaged with `modelguard package` are added from the BentoML
  store, listed, declared with `--existing`, removed; its refusals (wrong or missing token,
  an unregistered version, a changed registration, foreign reference scores, an unknown
  model) come back as exit code 2 with the monitor's ErrorBody printed.
- A tiny stdlib HTTP server answering canned responses in the routes' shapes, for what the
  real monitor only gives after live traffic and an analysis cycle (verdicts with bands), or
  never on purpose (a 409 because a ModelMonitor's spec.candidates declares it, a 503, a
  stall): the table's rendering and exit code 1.
- Bad arguments (exit 2 naming the argument) and a port nobody listens on (exit 1).

The token is never printed: every test checks it is absent from the output.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from bentos.cli.app import app
from bentos.cli.schema_file import load_schema
from contract import metadata as md_keys
from replay.launcher import free_port
from tests.support.monitor import MonitorProcess, running_monitor

runner = CliRunner()
TOKEN_ENV = "MODELGUARD_MONITOR_TOKEN"
SECRETS: list[str] = []  # every token handed to the command: none may appear in its output


def invoke(*args: object, token: str | None = None) -> tuple[int, str]:
    if token:
        SECRETS.append(token)
    result = runner.invoke(app, [str(a) for a in args], env={TOKEN_ENV: token})
    for secret in SECRETS:
        assert secret not in result.output, "the token was printed"
    return result.exit_code, result.output


# ---------------------------------------------------------------- toy models in the store


def toy_frame(rows: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "blue", "green"], rows)
    speed = rng.normal(50, 10, rows)
    logit = (speed - 50) / 5 + (color == "red") * 1.5
    return pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=rows, freq="h").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "color": color,
            "speed": speed,
            "outcome": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


@pytest.fixture(scope="module")
def tags(tmp_path_factory: pytest.TempPathFactory, bentoml_home: Path) -> dict[str, str]:
    """release -> NAME:VERSION of toy models packaged with `modelguard package`."""
    d = tmp_path_factory.mktemp("toy")
    data = toy_frame()
    csv, schema_path, reference = d / "data.csv", d / "schema.yaml", d / "reference.csv"
    data.iloc[:400].to_csv(csv, index=False)
    data.iloc[400:].to_csv(reference, index=False)
    code, output = invoke(
        "schema", "infer", csv, "--label", "outcome", "--time", "when", "-o", schema_path
    )
    assert code == 0, output
    schema = load_schema(schema_path)
    dtrain = xgb.DMatrix(schema.encode(data.iloc[:400]), label=data["outcome"].iloc[:400])
    out = {}
    for release, depth in (("first", 2), ("second", 3), ("foreign", 4), ("changed", 5)):
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": depth, "nthread": 1, "seed": 1},
            dtrain,
            num_boost_round=20,
        )
        booster.save_model(d / f"{release}.ubj")
        code, output = invoke(
            "package",
            d / f"{release}.ubj",
            "--schema",
            schema_path,
            "--reference",
            reference,
            "--name",
            "toy_candidate",
            "--release",
            release,
            "--min-auc",
            "0.5",
        )
        assert code == 0, output
        out[release] = output.strip().splitlines()[-1]
    return out


def version(tag: str) -> str:
    return tag.split(":", 1)[1]


# ---------------------------------------------------------------- the real monitor


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorProcess]:
    with running_monitor(tmp_path_factory.mktemp("monitor"), reader_token=True) as proc:
        SECRETS.extend(proc.tokens.values())
        yield proc


@pytest.mark.slow
def test_add_list_remove_with_the_real_monitor(
    monitor: MonitorProcess, tags: dict[str, str]
) -> None:
    url, operator, reader = monitor.url, monitor.tokens["operator"], monitor.tokens["reader"]
    first, second = tags["first"], tags["second"]

    code, output = invoke("candidate", "add", first, "--monitor", url, token=operator)
    assert code == 0, output
    assert f"{first} is now a candidate (registered and declared)" in output
    code, output = invoke("candidate", "add", first, "--monitor", url, "--token", operator)
    assert code == 0 and f"{first} was already a candidate" in output, output

    # --existing: a version the monitor has (registered as a predictor would), no upload.
    code, output = invoke("candidate", "add", second, "--monitor", url, token=operator)
    assert code == 0, output
    code, output = invoke(
        "candidate", "remove", "toy_candidate", version(second), "--monitor", url, token=operator
    )
    assert code == 0 and f"{second} is no longer a candidate" in output, output
    code, output = invoke(
        "candidate", "add", second, "--existing", "--monitor", url, token=operator
    )
    assert code == 0 and f"{second} is now a candidate (declared)" in output, output

    code, output = invoke(
        "candidate", "list", "toy_candidate", "--monitor", url, "--json", token=reader
    )
    assert code == 0, output
    body = json.loads(output)
    assert body["model"] == "toy_candidate"
    listed = {c["version"]: c for c in body["candidates"]}
    assert set(listed) == {version(first), version(second)}
    assert listed[version(first)]["sources"] == ["api"]

    code, output = invoke("candidate", "list", "toy_candidate", "--monitor", url, token=reader)
    assert code == 0, output
    assert "toy_candidate: candidates" in output
    assert version(first) in output and version(second) in output

    for tag in (first, second):
        code, output = invoke(
            "candidate", "remove", "toy_candidate", version(tag), "--monitor", url, token=operator
        )
        assert code == 0, output
    code, output = invoke("candidate", "list", "toy_candidate", "--monitor", url, token=reader)
    assert code == 0 and "toy_candidate: no candidates" in output, output

    # Removing again: 404 from the monitor, its ErrorBody, exit 2 (the command must change).
    code, output = invoke(
        "candidate", "remove", "toy_candidate", version(first), "--monitor", url, token=operator
    )
    assert code == 2, output
    assert "HTTP 404" in output and f"toy_candidate:{version(first)} is not a candidate" in output
    assert f"version: toy_candidate:{version(first)} is not a candidate" in output  # loc: msg


@pytest.mark.slow
def test_the_monitor_refusals_exit_2_with_its_error_body(
    monitor: MonitorProcess, tags: dict[str, str]
) -> None:
    import bentoml

    from bentos.packaging import registration_from_bento_model

    url, operator, reader = monitor.url, monitor.tokens["operator"], monitor.tokens["reader"]
    first = tags["first"]

    code, output = invoke("candidate", "add", first, "--monitor", url)  # no token
    assert code == 2 and "HTTP 401" in output and "--token" in output, output
    code, output = invoke("candidate", "add", first, "--monitor", url, token=reader)
    assert code == 2 and "HTTP 403" in output and "operator token" in output, output
    code, output = invoke("candidate", "add", first, "--monitor", url, token="wrong-s3cret")
    assert code == 2 and ("HTTP 401" in output or "HTTP 403" in output), output
    code, output = invoke("candidate", "list", "toy_candidate", "--monitor", url)  # reader needed
    assert code == 2 and "HTTP 401" in output, output

    code, output = invoke(
        "candidate",
        "add",
        "toy_candidate:never-0123456789",
        "--existing",
        "--monitor",
        url,
        token=operator,
    )
    assert code == 2 and "HTTP 404" in output, output
    assert "version: toy_candidate:never-0123456789 is not registered" in output

    code, output = invoke("candidate", "list", "no_such_model", "--monitor", url, token=reader)
    assert code == 2 and "HTTP 404" in output and "'no_such_model' is unknown" in output

    # Same version, other content (registered before with another description): 409.
    changed = tags["changed"]
    reg = registration_from_bento_model(bentoml.models.get(changed))
    body = {**reg.model_dump(by_alias=True, mode="json"), "description": "something else"}
    resp = httpx.post(f"{url}/v1/models", json=body, headers=monitor.auth, timeout=120)
    assert resp.status_code == 201, resp.text
    code, output = invoke("candidate", "add", changed, "--monitor", url, token=operator)
    assert code == 2 and "HTTP 409" in output, output

    # Reference scores that are not the booster's own: the monitor's vetting names the field.
    foreign = bentoml.models.get(tags["foreign"])
    ref_path = Path(foreign.path_of(md_keys.DEFAULT_REFERENCE_FILE))
    rows = json.loads(ref_path.read_text())
    for row in rows:
        row["probability"] = round(1 - row["probability"], 6)
    ref_path.write_text(json.dumps(rows))
    code, output = invoke("candidate", "add", tags["foreign"], "--monitor", url, token=operator)
    assert code == 2 and "HTTP 422" in output, output
    assert "candidates: reference: reference[0].probability" in output  # its loc: msg

    code, output = invoke(
        "candidate", "list", "toy_candidate", "--monitor", url, "--json", token=reader
    )
    assert code in (0, 2), output  # nothing was declared by the refused calls
    if code == 0:
        assert json.loads(output)["candidates"] == []


# ---------------------------------------------------------------- a stdlib stand-in


class Canned:
    """A loopback HTTP server answering (method, path) with canned (status, body, delay)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Any, float]] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                canned.seen.append((self.command, self.path, dict(self.headers), body))
                status, payload, delay = canned.answers.get(
                    (self.command, self.path), (404, {"error": "no route", "errors": []}, 0.0)
                )
                time.sleep(delay)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                kind = "text/plain" if isinstance(payload, bytes) else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._answer()

            def do_PUT(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_DELETE(self) -> None:
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canned:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned() -> Iterator[Canned]:
    with Canned() as server:
        yield server


def verdict(**over: Any) -> dict[str, Any]:
    base = {
        "version": "second-abcdef0123",
        "verdict": "Worse",
        "reason": "WorseOnSameRows",
        "message": "estimated same-rows gap -0.0412 [-0.0601, -0.0223] at 95% vs "
        "first-0123456789 over 6 chunks / 3000 rows",
        "baseline_version": "first-0123456789",
        "basis": "estimated",
        "chunks": 6,
        "rows": 3000,
        "labelled_rows": 0,
        "chunks_needed": None,
        "estimated_gap": -0.0412,
        "estimated_gap_lower": -0.0601,
        "estimated_gap_upper": -0.0223,
        "realized_gap": None,
        "realized_gap_lower": None,
        "realized_gap_upper": None,
        "level": 0.95,
    }
    return {**base, **over}


def test_list_renders_verdicts_gaps_bands_and_pending(canned: Canned) -> None:
    listing = {
        "model": "toy_model",
        "candidates": [
            {
                "version": "second-abcdef0123",
                "sources": ["api"],
                "added_at": "t",
                "verdict": verdict(),
            },
            {
                "version": "third-abcdef0123",
                "sources": ["api", "spec"],
                "added_at": "t",
                "verdict": verdict(
                    version="third-abcdef0123",
                    verdict="Inconclusive",
                    reason="BandStraddlesMargin",
                    chunks=2,
                    rows=1000,
                    chunks_needed=4,
                    estimated_gap=0.001,
                    estimated_gap_lower=-0.02,
                    estimated_gap_upper=0.022,
                ),
            },
            {
                "version": "fourth-abcdef0123",
                "sources": ["spec"],
                "added_at": "t",
                "verdict": verdict(
                    version="fourth-abcdef0123",
                    verdict="Better",
                    reason="BetterOnSameRows",
                    basis="realized",
                    realized_gap=0.031,
                    realized_gap_lower=0.012,
                    realized_gap_upper=0.05,
                    labelled_rows=2400,
                ),
            },
            {"version": "fifth-abcdef0123", "sources": ["api"], "added_at": "t", "verdict": None},
        ],
    }
    canned.answers[("GET", "/v1/models/toy_model/candidates")] = (200, listing, 0.0)
    code, output = invoke(
        "candidate", "list", "toy_model", "--monitor", canned.url + "/", token="reader-s3cret"
    )
    assert code == 0, output
    lines = output.splitlines()
    assert "toy_model: candidates vs first-0123456789" in lines[0]
    assert "gap [95% band]" in output

    def row(name: str) -> str:
        return next(line for line in lines if line.startswith(f"│ {name}"))

    worse = row("second-abcdef0123")
    assert "Worse" in worse and "-0.0412 [-0.0601, -0.0223]" in worse and "6/3000" in worse
    assert "estimated" in worse and "WorseOnSameRows" in worse
    inconclusive = row("third-abcdef0123")
    assert "Inconclusive" in inconclusive and "+0.0010 [-0.0200, +0.0220]" in inconclusive
    assert "│      4 │" in inconclusive  # chunks needed
    better = row("fourth-abcdef0123")
    assert "Better" in better and "+0.0310 [+0.0120, +0.0500]" in better
    assert "realized" in better
    assert "pending" in row("fifth-abcdef0123") and "not judged yet" in row("fifth-abcdef0123")
    assert "second-abcdef0123: estimated same-rows gap -0.0412" in output  # the message

    method, path, headers, _ = canned.seen[-1]
    assert (method, path) == ("GET", "/v1/models/toy_model/candidates")
    assert headers["Authorization"] == "Bearer reader-s3cret"

    code, output = invoke("candidate", "list", "toy_model", "--monitor", canned.url, "--json")
    assert code == 0 and json.loads(output) == listing
    assert "Authorization" not in canned.seen[-1][2]  # no token: none sent


def test_put_sends_no_body_and_remove_names_the_spec_conflict(canned: Canned) -> None:
    declared = {
        "model": "toy_model",
        "version": "v-0123456789",
        "declared": True,
        "sources": ["api"],
        "added_at": "t",
        "registration": None,
    }
    canned.answers[("PUT", "/v1/models/toy_model/candidates/v-0123456789")] = (201, declared, 0)
    code, output = invoke(
        "candidate",
        "add",
        "toy_model:v-0123456789",
        "--existing",
        "--monitor",
        canned.url,
        token="op-s3cret",
    )
    assert code == 0 and "toy_model:v-0123456789 is now a candidate (declared)" in output
    method, _, headers, body = canned.seen[-1]
    assert method == "PUT" and body == b"" and headers["Authorization"] == "Bearer op-s3cret"

    conflict = {
        "error": "version: toy_model:v-0123456789 is declared by a ModelMonitor's "
        "spec.candidates: remove it there",
        "errors": [
            {
                "loc": "version",
                "msg": "toy_model:v-0123456789 is declared by a "
                "ModelMonitor's spec.candidates: remove it there",
            }
        ],
    }
    canned.answers[("DELETE", "/v1/models/toy_model/candidates/v-0123456789")] = (
        409,
        conflict,
        0.0,
    )
    code, output = invoke(
        "candidate",
        "remove",
        "toy_model",
        "v-0123456789",
        "--monitor",
        canned.url,
        token="op-s3cret",
    )
    assert code == 2, output
    assert "error: the monitor answered HTTP 409 to DELETE" in output
    assert "candidates/v-0123456789: version: toy_model:v-0123456789 is declared by a" in output
    assert output.count("is declared by") == 1  # `error` already is its one `loc: msg`
    several = {
        "error": "model: is 'other', but the path names the model 'toy_model'; version: bad",
        "errors": [
            {"loc": "model", "msg": "is 'other', but the path names the model 'toy_model'"},
            {"loc": "version", "msg": "bad"},
        ],
    }
    canned.answers[("DELETE", "/v1/models/toy_model/candidates/v-0123456789")] = (
        422,
        several,
        0.0,
    )
    code, output = invoke(
        "candidate", "remove", "toy_model", "v-0123456789", "--monitor", canned.url
    )
    assert code == 2, output
    assert "\n  model: is 'other', but the path names the model 'toy_model'\n" in output
    assert "\n  version: bad\n" in output  # each `loc: msg` on its own line


def test_server_errors_and_stalls_exit_1(canned: Canned) -> None:
    path = "/v1/models/toy_model/candidates"
    canned.answers[("GET", path)] = (503, b"upstream unavailable\n", 0.0)
    code, output = invoke("candidate", "list", "toy_model", "--monitor", canned.url)
    assert code == 1 and "HTTP 503" in output and "upstream unavailable" in output, output
    canned.answers[("GET", path)] = (429, {"error": "too many requests", "errors": []}, 0.0)
    code, output = invoke("candidate", "list", "toy_model", "--monitor", canned.url)
    assert code == 1 and "HTTP 429" in output and "too many requests" in output, output
    canned.answers[("GET", path)] = (200, {"model": "toy_model", "candidates": []}, 2.0)
    code, output = invoke(
        "candidate", "list", "toy_model", "--monitor", canned.url, "--timeout", "0.3"
    )
    assert code == 1 and "no answer within 0.3 s (--timeout)" in output, output
    canned.answers[("GET", path)] = (200, b"[1, 2]", 0.0)
    code, output = invoke("candidate", "list", "toy_model", "--monitor", canned.url)
    assert code == 1 and "not a JSON object" in output, output


def test_nobody_listening_exits_1_naming_the_monitor() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("list", "toy_model"),
        ("remove", "toy_model", "v1"),
        ("add", "toy_model:v1", "--existing"),
    ):
        code, output = invoke("candidate", *args, "--monitor", url, token="op-s3cret")
        assert code == 1, output
        assert "cannot reach the monitor" in output and url in output
        assert "is --monitor right?" in output


def test_bad_arguments_exit_2_naming_the_argument(canned: Canned, tags: dict[str, str]) -> None:
    url = canned.url
    cases = {
        ("list", "toy_model", "--monitor", "localhost:8080"): "--monitor 'localhost:8080'",
        ("list", "toy_model", "--monitor", "ftp://host"): "--monitor 'ftp://host'",
        ("list", "toy_model", "--monitor", "http://u:p@host"): "no credentials in the URL",
        ("list", "Toy Model", "--monitor", url): "MODEL 'Toy Model'",
        ("list", "toy_model", "--monitor", url, "--timeout", "0"): "--timeout 0",
        ("remove", "toy_model", "Bad/Version", "--monitor", url): "VERSION 'Bad/Version'",
        ("add", "toy_model", "--existing", "--monitor", url): "--existing needs NAME:VERSION",
        ("add", "toy_model:nope-0123456789", "--monitor", url): "no such model in the BentoML",
        ("add", "Toy:v1", "--monitor", url): "MODEL 'Toy'",
    }
    for args, named in cases.items():
        code, output = invoke("candidate", *args, token="op-s3cret")
        assert code == 2, (args, output)
        assert named in output, (args, output)
    code, output = invoke("candidate", "list", "toy_model")  # no --monitor at all
    assert code == 2 and "--monitor" in output
    assert canned.seen == []  # nothing was sent for any of them
