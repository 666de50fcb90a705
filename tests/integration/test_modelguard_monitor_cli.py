"""`modelguard status | chunks | decisions | audit | report | known-good set | clear-rejection`
over real HTTP against one real monitor (`python -m monitor serve`, a token per role and a
reader token), and `python -m monitor` on the same database: the same information.

The monitor's database gets one real registration (the session's `good` weather model)
under three version names, stored as `POST /v1/models` stores it (the vetting child is
test_monitor_api.py's); then, over HTTP, 250 scored records with their labels (two chunks
of 100 analysed by its own background analysis, 50 rows pending); then a rejection, a
decision and an unusable policy, written into its database as the operator writes them.
Each command is checked for exit code 0 with its table and `--json`, 2 on an unknown model
(404, or an empty answer about a model it does not know), a missing, wrong or read-only
token (401/403) and a refusal (409), and 1 when nothing listens. The token is never
printed: every invocation checks its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bentos.cli.app import app
from monitor.memory.audit import AuditEntry
from monitor.memory.state import OperatorState, PolicyReport, Rejection
from monitor.store.sqlite import SqliteStore
from replay.launcher import free_port
from tests.support.monitor import MonitorProcess, RoleAuth, running_monitor
from tests.support.paths import REPO
from tests.support.records import served

runner = CliRunner()
SECRETS: list[str] = []
ENV_NAMES = (
    "MODELGUARD_MONITOR_TOKEN",
    "MODELGUARD_MONITOR_READER_TOKEN",
    "MODELGUARD_MONITOR_OPERATOR_TOKEN",
)
SPARE, REJECTED = "v-spare", "v-rejected"
CHUNK_ROWS, RECORDS = 100, 250
WIDE = {"COLUMNS": "250"}  # both CLIs' tables this wide, so that they wrap alike


def invoke(*args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The command with only `env`'s tokens in its environment; its output has no token."""
    environment: dict[str, str | None] = dict.fromkeys(ENV_NAMES)
    environment.update(env or {})
    result = runner.invoke(app, [str(a) for a in args], env=environment)
    for secret in SECRETS:
        assert secret not in result.output, "a token was printed"
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def monitor(
    tmp_path_factory: pytest.TempPathFactory, registrations: dict[str, Any], split: Any
) -> Iterator[MonitorProcess]:
    reg = registrations["good"]
    env = {"MONITOR_CHUNK_SIZE": str(CHUNK_ROWS), "MONITOR_OPERATOR": "false"}
    workdir = tmp_path_factory.mktemp("frontdoor")
    db_path = workdir / "monitor.db"
    with SqliteStore(db_path) as store:  # as POST /v1/models stores them, without the vetting
        body = reg.model_dump(by_alias=True, mode="json")
        for version in (reg.version, SPARE, REJECTED):
            assert store.register({**body, "version": version}) == "created"
            store.append_audit(AuditEntry("registered", reg.model, version, time=None))
    with running_monitor(
        workdir, db_path=db_path, env=env, reader_token=True, analysis_interval_seconds=1
    ) as mon:
        SECRETS.extend(mon.tokens.values())
        records, labels = served(split, reg, 0, RECORDS, "frontdoor")
        with httpx.Client(base_url=mon.url, timeout=60, auth=RoleAuth(mon)) as client:
            assert client.post("/v1/records", json={"records": records}).status_code == 202
            assert client.post("/v1/labels", json={"labels": labels}).status_code == 202
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if len(client.get(f"/v1/models/{reg.model}/chunks").json()) == 2:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"no two chunks:\n{mon.tail()}")
            while time.monotonic() < deadline and not _chunking_published(client):
                time.sleep(0.5)
        with SqliteStore(mon.db_path) as store:
            state = OperatorState(store)
            state.reject(reg.model, REJECTED, Rejection("gate failed"))
            problem = ("MinRowsAboveChunk", "minRowsPerChunk 500 > 100 rows per chunk")
            state.set_policy_report(reg.model, PolicyReport("default", "rain", (problem,)))
            store.append_audit(
                AuditEntry(
                    "policy-unusable",
                    reg.model,
                    namespace="default",
                    modelmonitor="rain",
                    details={"problems": [list(problem)], "message": ": ".join(problem)},
                )
            )
            store.append_audit(
                AuditEntry(
                    "dry-run-rollback",
                    reg.model,
                    namespace="default",
                    modelmonitor="rain",
                    details={
                        "fromVersion": REJECTED,
                        "toVersion": reg.version,
                        "trigger": "release-gate",
                        "reason": "hold-out ROC AUC 0.61 < known-good 0.80 - 0.02",
                    },
                )
            )
        yield mon


def _chunking_published(client: httpx.Client) -> bool:
    return "modelguard_chunk_rows_pending{" in client.get("/metrics").text


@pytest.fixture(scope="module")
def model(registrations: dict[str, Any]) -> str:
    return str(registrations["good"].model)


def reader(mon: MonitorProcess) -> dict[str, str]:
    return {"MODELGUARD_MONITOR_READER_TOKEN": mon.tokens["reader"]}


def operator(mon: MonitorProcess) -> dict[str, str]:
    return {"MODELGUARD_MONITOR_OPERATOR_TOKEN": mon.tokens["operator"]}


def monitor_cli(mon: MonitorProcess, *args: str) -> str:
    """`python -m monitor ARGS --db` on the running monitor's database, 250 columns wide."""
    env = {**os.environ, **WIDE, "MONITOR_DB_PATH": str(mon.db_path)}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


# ---------------------------------------------------------------- reads


def test_status_says_what_python_m_monitor_status_says(monitor: MonitorProcess, model: str) -> None:
    code, output = invoke("status", "--monitor", monitor.url, "--json", env=reader(monitor))
    assert code == 0, output
    body = json.loads(output)
    versions = {v["version"]: v for v in body["versions"]}
    served_version = next(v for v in versions if v not in (SPARE, REJECTED))
    assert versions[REJECTED]["state"] == "rejected"
    assert versions[served_version]["records"] == RECORDS
    assert versions[served_version]["chunks"] == 2
    assert versions[served_version]["labelled_rows"] == 2 * CHUNK_ROWS
    assert versions[served_version]["chunking"] == {
        "rows_per_chunk": CHUNK_ROWS,
        "pending_rows": RECORDS - 2 * CHUNK_ROWS,
        "rows_needed": 3 * CHUNK_ROWS - RECORDS,
    }
    assert body["policy_problems"][0]["problems"][0][0] == "MinRowsAboveChunk"

    theirs = monitor_cli(monitor, "status")
    code, ours = invoke("status", "--monitor", monitor.url, env={**reader(monitor), **WIDE})
    assert code == 0, ours
    # Model, version, state, release, records, chunks: the same cells, row by row.
    assert [r[:6] for r in table_rows(theirs)] == [r[:6] for r in table_rows(ours)]
    # Both tables (versions, then chunking: rows per chunk, pending, needed), the same;
    # the policy problem line too.
    problem = "policy unusable (ModelMonitor default/rain): MinRowsAboveChunk: minRowsPerChunk"
    assert problem in theirs and problem in ours

    code, output = invoke(
        "status", "--model", "no-such-model", "--monitor", monitor.url, env=reader(monitor)
    )
    assert code == 2 and "--model 'no-such-model': the monitor knows no such model" in output
    code, output = invoke("status", "--monitor", monitor.url)  # no token: the reader's needed
    assert code == 2 and "HTTP 401" in output and "--token" in output, output


def test_chunks_list_the_analysed_chunks(monitor: MonitorProcess, model: str) -> None:
    code, output = invoke("chunks", model, "--monitor", monitor.url, "--json", env=reader(monitor))
    assert code == 0, output
    chunks = json.loads(output)
    assert [c["chunk_index"] for c in chunks] == [0, 1]
    assert all(c["rows"] == CHUNK_ROWS for c in chunks)
    version = chunks[0]["version"]

    code, output = invoke("chunks", model, "--monitor", monitor.url, env=reader(monitor))
    assert code == 0, output
    assert f"{model}: chunks" in output
    rows = [r for r in table_rows(output) if r[0] == version]
    assert len(rows) == 2 and rows[0][2] == str(CHUNK_ROWS)
    first = chunks[0]
    assert rows[0][3].startswith(first["start_time"][:16].replace("T", " "))  # the span, UTC
    assert rows[0][4].startswith(f"{first['estimated']['roc_auc']['value']:.3f} [")
    assert rows[0][5] == f"{first['realized']['roc_auc']:.3f}"
    assert rows[0][6] == str(first["labelled_rows"])

    code, output = invoke(
        "chunks", model, "--version", SPARE, "--monitor", monitor.url, env=reader(monitor)
    )
    assert code == 0 and f"{model}:{SPARE}: no chunks analysed yet" in output, output
    code, output = invoke(
        "chunks", model, "--version", "never", "--monitor", monitor.url, env=reader(monitor)
    )
    assert code == 2 and "--version 'never': the monitor knows no such version" in output
    code, output = invoke("chunks", "no-such-model", "--monitor", monitor.url, env=reader(monitor))
    assert code == 2 and "MODEL 'no-such-model': the monitor knows no such model" in output
    code, output = invoke("chunks", model, "--monitor", monitor.url, "--token", "wrong-s3cret")
    assert code == 2 and "HTTP 401" in output, output


def test_decisions_and_the_audit_log(monitor: MonitorProcess, model: str) -> None:
    code, output = invoke("decisions", "--monitor", monitor.url, "--json", env=reader(monitor))
    assert code == 0, output
    decisions = json.loads(output)
    assert [(d["kind"], d["trigger"]) for d in decisions] == [("dry-run-rollback", "release-gate")]
    code, output = invoke(
        "decisions", "--model", model, "--monitor", monitor.url, env={**reader(monitor), **WIDE}
    )
    assert code == 0, output
    row = table_rows(output)[0]
    assert row[2:5] == ["dry-run-rollback", model, "release-gate"], output
    assert row[5].startswith(f"{REJECTED} -> "), output
    code, output = invoke(
        "decisions", "--model", "no-such-model", "--monitor", monitor.url, env=reader(monitor)
    )
    assert code == 2 and "--model 'no-such-model'" in output, output

    code, output = invoke("audit", "--monitor", monitor.url, "--json", env=reader(monitor))
    assert code == 0, output
    entries = json.loads(output)
    kinds = [e["kind"] for e in entries]
    assert kinds.count("registered") == 3 and "dry-run-rollback" in kinds
    code, output = invoke(
        "audit",
        "--kind",
        "registered",
        "--limit",
        "2",
        "--monitor",
        monitor.url,
        "--json",
        env=reader(monitor),
    )
    assert code == 0, output
    assert [e["id"] for e in json.loads(output)] == [
        e["id"] for e in entries if e["kind"] == "registered"
    ][-2:]

    # The table is the one `python -m monitor audit` prints from the database.
    theirs = monitor_cli(monitor, "audit", "--model", model)
    code, ours = invoke(
        "audit", "--model", model, "--monitor", monitor.url, env={**reader(monitor), **WIDE}
    )
    assert code == 0, ours
    assert table_rows(theirs) == table_rows(ours)

    code, output = invoke("audit", "--limit", "0", "--monitor", monitor.url)
    assert code == 2 and "--limit 0" in output, output
    code, output = invoke(
        "audit", "--model", "no-such-model", "--monitor", monitor.url, env=reader(monitor)
    )
    assert code == 2 and "no such model" in output, output


def test_report_downloads_the_html(monitor: MonitorProcess, model: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    code, output = invoke(
        "report", model, "-o", target, "--monitor", monitor.url, env=reader(monitor)
    )
    assert code == 0, output
    assert f"report written to {target}" in output.replace("\n", "")
    assert target.read_text(encoding="utf-8").lstrip().startswith("<!DOCTYPE html>")
    code, output = invoke(
        "report",
        "no-such-model",
        "-o",
        tmp_path / "x.html",
        "--monitor",
        monitor.url,
        env=reader(monitor),
    )
    assert code == 2 and "HTTP 404" in output and "'no-such-model' is unknown" in output, output
    assert not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------- writes


def test_known_good_set_and_clear_rejection(monitor: MonitorProcess, model: str) -> None:
    url = monitor.url
    code, output = invoke(
        "known-good", "set", model, SPARE, "--monitor", url, "--token", monitor.tokens["reader"]
    )
    assert code == 2 and "HTTP 403" in output and "operator token" in output, output
    code, output = invoke("known-good", "set", model, SPARE, "--monitor", url, env=reader(monitor))
    assert code == 2 and "HTTP 401" in output, output  # writes never send the reader's token

    code, output = invoke(
        "known-good", "set", model, SPARE, "--monitor", url, env=operator(monitor)
    )
    assert code == 0 and f"{model}:{SPARE} is known-good (before: none)" in output, output
    code, output = invoke(
        "known-good", "set", model, SPARE, "--monitor", url, "--json", env=operator(monitor)
    )
    assert code == 0 and json.loads(output) == {"model": model, "version": SPARE, "previous": SPARE}
    code, output = invoke("status", "--monitor", url, env=reader(monitor))
    assert f"{model}: known-good {SPARE} declared by api" in output, output

    code, output = invoke(
        "known-good", "set", model, REJECTED, "--monitor", url, env=operator(monitor)
    )
    assert code == 2 and "HTTP 409" in output and "clear the rejection first" in output, output
    code, output = invoke(
        "known-good", "set", model, "never", "--monitor", url, env=operator(monitor)
    )
    assert code == 2 and "HTTP 404" in output and f"{model}:never is not registered" in output

    code, output = invoke(
        "clear-rejection", model, REJECTED, "--monitor", url, env=operator(monitor)
    )
    assert code == 0 and f"rejection of {model}:{REJECTED} cleared" in output, output
    code, output = invoke(
        "clear-rejection", model, REJECTED, "--monitor", url, "--json", env=operator(monitor)
    )
    assert code == 0 and json.loads(output)["cleared"] is False, output
    code, output = invoke(
        "clear-rejection", model, REJECTED, "--monitor", url, env=operator(monitor)
    )
    assert code == 0 and f"{model}:{REJECTED} was not rejected" in output, output
    code, output = invoke(
        "clear-rejection", model, "never", "--monitor", url, env=operator(monitor)
    )
    assert code == 2 and "HTTP 404" in output, output
    code, output = invoke(
        "clear-rejection", "no-such-model", REJECTED, "--monitor", url, env=operator(monitor)
    )
    assert code == 2 and "HTTP 404" in output, output

    # Cleared, it may be declared; the one shared variable serves a write as well.
    code, output = invoke(
        "known-good",
        "set",
        model,
        REJECTED,
        "--monitor",
        url,
        env={"MODELGUARD_MONITOR_TOKEN": monitor.tokens["operator"]},
    )
    assert code == 0 and f"(before: {SPARE})" in output, output
    code, output = invoke(
        "audit", "--model", model, "--json", "--monitor", url, env=reader(monitor)
    )
    kinds = [(e["kind"], e.get("version"), e.get("by")) for e in json.loads(output)]
    assert ("rejection-cleared", REJECTED, "api") in kinds
    assert kinds.count(("known-good-declared", SPARE, "api")) == 2


def test_every_command_exits_1_when_nothing_listens(model: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("status",),
        ("chunks", model),
        ("decisions",),
        ("audit",),
        ("report", model, "-o", tmp_path / "r.html"),
        ("known-good", "set", model, SPARE),
        ("clear-rejection", model, SPARE),
    ):
        code, output = invoke(*args, "--monitor", url)
        assert code == 1 and "cannot reach the monitor" in output, (args, output)
