"""The monitor's trust boundary over real loopback HTTP (docs/monitor.md#trust-boundary).

Each test is an attack from issue 15 against `python -m monitor serve` with one token per
role (and a reader token): it must be refused with a 4xx naming the problem, write nothing
and leave the monitor up. The registrations are real models trained into a temporary store.
"""

from __future__ import annotations

import base64
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract.errors import ErrorBody
from monitor.operator.inputs import gate_holdouts
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import MonitorProcess, RoleAuth, running_monitor
from tests.support.records import served

pytestmark = pytest.mark.slow
CUTS = (1, 10, 35, 43, 50, 70, 90, 99)  # truncations, in % of the booster's bytes


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorProcess]:
    with running_monitor(tmp_path_factory.mktemp("trust"), reader_token=True) as proc:
        yield proc


@pytest.fixture
def client(monitor: MonitorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=monitor.url, timeout=60, auth=RoleAuth(monitor)) as c:
        yield c


@pytest.fixture(scope="module")
def good(monitor: MonitorProcess, registrations: dict[str, Any]) -> Any:
    """The good release, registered by its predictor (predictor token, digest-bound name)."""
    reg = registrations["good"]
    body = reg.model_dump(by_alias=True, mode="json")
    resp = httpx.post(
        f"{monitor.url}/v1/models", json=body, headers=monitor.headers("predictor"), timeout=60
    )
    assert resp.status_code in (200, 201), resp.text
    return reg


def counts(monitor: MonitorProcess) -> tuple[int, int, int]:
    with SqliteStore(monitor.db_path) as store:
        conn = store._reader()
        return tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("records", "labels", "model_versions")
        )


def error(resp: httpx.Response) -> ErrorBody:
    return ErrorBody.model_validate_json(resp.content, strict=True)


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    text = httpx.get(f"{str(client.base_url).rstrip('/')}/metrics").text  # open: no token
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def records_of(reg: Any, split: Any, n: int = 20, **over: Any) -> list[dict[str, Any]]:
    out, _ = served(split, reg, 0, n, uuid.uuid4().hex)
    return [{**r, **over} for r in out]


def test_unauthenticated_and_wrong_role_writes_are_refused(
    client: httpx.Client, monitor: MonitorProcess, good: Any, split: Any
) -> None:
    before = counts(monitor)
    batch = {"records": records_of(good, split)}
    labels = {
        "labels": [{"prediction_id": r["prediction_id"], "label": 1} for r in batch["records"]]
    }
    no_token = {"Authorization": ""}
    for path, body in (("/v1/records", batch), ("/v1/labels", labels)):
        resp = client.post(path, json=body, headers=no_token)
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"] == "Bearer"
        wrong = client.post(path, json=body, headers={"Authorization": "Bearer guessed"})
        assert wrong.status_code == 401
    # Right token, wrong role: a label feeder cannot post records, a predictor not labels.
    resp = client.post("/v1/records", json=batch, headers=monitor.headers("labels"))
    assert resp.status_code == 403 and "predictor token" in error(resp).error
    resp = client.post("/v1/labels", json=labels, headers=monitor.headers("predictor"))
    assert resp.status_code == 403 and "labels token" in error(resp).error
    assert counts(monitor) == before
    assert metric(client, "modelguard_auth_refused_total", role="predictor", code="401") >= 2
    # The same bodies with the right roles are stored.
    assert client.post("/v1/records", json=batch).status_code == 202
    assert client.post("/v1/labels", json=labels).status_code == 202


def test_the_token_is_checked_before_the_body_is_read(monitor: MonitorProcess) -> None:
    """Headers announcing a 1 MB body, and no body at all: the 401 comes anyway (a server
    that read the body first would wait for it until our socket timeout)."""
    with socket.create_connection(("127.0.0.1", monitor.port), timeout=20) as sock:
        sock.sendall(
            b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 401"), head


def test_a_predictor_token_cannot_call_operator_endpoints(
    client: httpx.Client, monitor: MonitorProcess, good: Any
) -> None:
    base = f"/v1/models/{good.model}/versions/{good.version}"
    for path in (f"{base}/clear-rejection", f"{base}/known-good"):
        for role in ("predictor", "labels", "reader"):
            resp = client.post(path, headers=monitor.headers(role))
            assert resp.status_code == 403, (path, role, resp.text)
            assert "operator token" in error(resp).error
    with SqliteStore(monitor.db_path) as store:
        assert store.audit(good.model, "known-good-declared") == []
    assert client.post(f"{base}/known-good").status_code == 200  # the operator may


def test_reads_need_the_reader_or_operator_token(
    client: httpx.Client, monitor: MonitorProcess, good: Any
) -> None:
    paths = ["/v1/models", f"/v1/models/{good.model}/chunks", "/v1/audit", "/v1/decisions"]
    for path in [*paths, f"/reports/{good.model}"]:
        assert client.get(path, headers={"Authorization": ""}).status_code == 401, path
        assert client.get(path, headers=monitor.headers("predictor")).status_code == 403, path
    for path in paths:
        assert client.get(path).status_code == 200, path  # reader
        assert client.get(path, headers=monitor.headers("operator")).status_code == 200
    for path in ("/metrics", "/livez", "/readyz", "/openapi.json"):
        assert httpx.get(monitor.url + path).status_code == 200, path


def test_records_of_a_forged_version_are_refused_and_counted(
    client: httpx.Client, monitor: MonitorProcess, good: Any, split: Any
) -> None:
    before = counts(monitor)
    refused = metric(client, "modelguard_records_rejected_total", reason="unregistered")
    forged = records_of(good, split, 10, version="good-0000000000")
    batch = records_of(good, split, 5) + forged  # a genuine head does not carry the rest
    resp = client.post("/v1/records", json={"records": batch})
    assert resp.status_code == 425, resp.text
    assert [e.loc for e in error(resp).errors] == ["records[5].version"]
    assert resp.headers["retry-after"] == "5"  # the shipper retries 425: nothing is lost
    unknown_model = records_of(good, split, 1, model="someone_elses")
    resp = client.post("/v1/records", json={"records": unknown_model})
    assert resp.status_code == 425 and [e.loc for e in error(resp).errors] == ["records[0].model"]
    many = [records_of(good, split, 1, version=f"v{i}")[0] for i in range(200)]
    assert client.post("/v1/records", json={"records": many}).status_code == 425
    assert counts(monitor) == before
    after = metric(client, "modelguard_records_rejected_total", reason="unregistered")
    assert after - refused == len(batch) + 1 + len(many)
    text = httpx.get(f"{monitor.url}/metrics").text
    assert "good-0000000000" not in text and 'version="v17"' not in text  # no series made


def test_a_squatted_version_name_is_refused(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    """The predictor token registers the *next* release's name with another booster: 403.
    The real predictor then registers it (201), and the operator may name one freely."""
    real = registrations["retrain"]
    squat = registrations["no-key-features"].model_dump(by_alias=True, mode="json")
    squat["version"] = real.version
    before = counts(monitor)
    resp = client.post("/v1/models", json=squat, headers=monitor.headers("predictor"))
    assert resp.status_code == 403, resp.text
    assert [e.loc for e in error(resp).errors] == ["version"]
    assert "sha256" in error(resp).error
    assert counts(monitor) == before
    body = real.model_dump(by_alias=True, mode="json")
    resp = client.post("/v1/models", json=body, headers=monitor.headers("predictor"))
    assert resp.status_code == 201, resp.text
    named = {**squat, "version": "hand-named"}
    assert client.post("/v1/models", json=named).status_code == 201  # operator token
    for role in ("labels", "reader"):
        assert (
            client.post("/v1/models", json=body, headers=monitor.headers(role)).status_code == 403
        )


def test_self_declared_holdout_metrics_decide_nothing(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    """A registration claiming ROC AUC 0.99: the monitor's own hold-out figure is stored,
    and the release gate reads that one, measured on the known-good's reference rows."""
    reg = registrations["no-key-features"]
    body = reg.model_dump(by_alias=True, mode="json")
    body["metrics"] = {"reference": {"roc_auc": 0.99, "pr_auc": 0.99, "f1": 0.99}}
    resp = client.post("/v1/models", json=body, headers=monitor.headers("predictor"))
    assert resp.status_code == 201, resp.text
    detail = client.get(f"/v1/models/{reg.model}/versions/{reg.version}").json()
    assert detail["metrics"]["reference"]["roc_auc"] == 0.99  # kept as sent, not used
    own = detail["monitor_holdout"]["roc_auc"]
    assert own == pytest.approx(reg.metrics["reference"]["roc_auc"], abs=1e-6)
    with SqliteStore(monitor.db_path) as store:
        live, known_good = gate_holdouts(store, reg.model, reg.version, good.version)
    assert live is not None and known_good is not None
    assert live["roc_auc"] == pytest.approx(own, abs=0.02)
    assert known_good["roc_auc"] == pytest.approx(good.metrics["reference"]["roc_auc"], abs=1e-6)
    live_auc, known_good_auc = live["roc_auc"], known_good["roc_auc"]
    assert live_auc is not None and known_good_auc is not None
    assert known_good_auc - live_auc > 0.02  # the gate's default shortfall


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"label": 7}, "must be the integer 0 or 1"),
        ({"label": True}, "must be the integer 0 or 1"),
        ({"probability": "x"}, "must be in [0, 1]"),
        ({"probability": 1.5}, "must be in [0, 1]"),
        ({"temp": "warm"}, "must be a number or null"),
        ({"origin": 3}, "must be a string or null"),
    ],
)
def test_a_malformed_reference_set_is_refused_naming_the_row(
    client: httpx.Client,
    monitor: MonitorProcess,
    registrations: dict[str, Any],
    change: dict[str, Any],
    names: str,
) -> None:
    reg = registrations["retrain"]
    body = reg.model_dump(by_alias=True, mode="json")
    body["version"] = "malformed-ref"
    label = reg.schema.label.name
    row = {**body["reference"][3], **{(label if k == "label" else k): v for k, v in change.items()}}
    body["reference"] = [*body["reference"][:3], row, *body["reference"][4:]]
    resp = client.post("/v1/models", json=body)
    assert resp.status_code == 422, resp.text
    [err] = error(resp).errors
    assert err.loc == "reference" and "reference[3]" in err.msg and names in err.msg, err


def test_a_reference_set_without_both_classes_or_with_foreign_scores_is_refused(
    client: httpx.Client, monitor: MonitorProcess, registrations: dict[str, Any]
) -> None:
    reg = registrations["retrain"]
    label = reg.schema.label.name
    body = reg.model_dump(by_alias=True, mode="json")
    body["version"] = "one-class"
    body["reference"] = [r for r in body["reference"] if r[label] == 0]
    resp = client.post("/v1/models", json=body)
    assert resp.status_code == 422 and "at least 20 of each" in error(resp).errors[0].msg
    # Scores that are not the booster's own (another release's): the rows lie about it.
    body = reg.model_dump(by_alias=True, mode="json")
    body["version"] = "foreign-scores"
    body["reference"] = registrations["good"].model_dump(by_alias=True, mode="json")["reference"]
    resp = client.post("/v1/models", json=body)
    assert resp.status_code == 422, resp.text
    assert [e.loc for e in error(resp).errors] == ["reference"]
    assert "not the booster's own score" in error(resp).error


def test_truncated_and_fuzzed_boosters_are_refused_and_the_monitor_stays_up(
    client: httpx.Client, monitor: MonitorProcess, registrations: dict[str, Any]
) -> None:
    """35% of the good booster made XGBoost 2.1 segfault, 1% and 43% ask for more memory than
    the child may have (in the monitor's process: the OOM killer); the rest fail to parse."""
    reg = registrations["good"]
    raw = reg.artifact_bytes()
    rng = random.Random(15)
    broken: list[tuple[str, bytes]] = [(f"truncated-{n}", raw[: len(raw) * n // 100]) for n in CUTS]
    for i in range(8):
        flipped = bytearray(raw)
        for _ in range(rng.choice((1, 8, 64))):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        broken.append((f"fuzzed-{i}", bytes(flipped)))
    body = reg.model_dump(by_alias=True, mode="json")
    answers = {}
    for name, data in broken:
        attempt = {**body, "version": name, "artifact": base64.b64encode(data).decode()}
        resp = client.post("/v1/models", json=attempt)
        answers[name] = resp.status_code
        assert resp.status_code < 500, (name, resp.text)
        assert monitor.alive and httpx.get(f"{monitor.url}/livez").status_code == 200, name
        if resp.status_code != 201:  # a flipped byte in a float may still load and score
            assert [e.loc for e in error(resp).errors] in (["artifact"], ["reference"]), resp.text
    assert all(answers[f"truncated-{n}"] == 400 for n in CUTS), answers
    log = monitor.log()
    assert "crashed XGBoost while loading (SIGSEGV)" in log  # the 35% cut, in the child
    assert "needs more than" in log
    with SqliteStore(monitor.db_path) as store:
        stored = {v.version for v in store.versions(reg.model)}
    assert not {f"truncated-{n}" for n in CUTS} & stored


def test_without_a_reader_token_reads_are_open_and_documented_as_open(tmp_path: Path) -> None:
    with running_monitor(tmp_path) as open_monitor:
        doc = httpx.get(open_monitor.url + "/openapi.json").json()
        assert httpx.get(open_monitor.url + "/v1/models").status_code == 200
    assert "security" not in doc["paths"]["/v1/models"]["get"]
    assert doc["paths"]["/v1/records"]["post"]["security"]  # writes always need a token
