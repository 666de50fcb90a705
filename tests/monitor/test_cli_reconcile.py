"""`python -m monitor reconcile --once [--dry-run]`: one operator pass from the command line,
offline (no cluster) on a real database; --dry-run changes nothing anywhere."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.kube.rollout import VERSION_ANNOTATION
from monitor.memory.state import KnownGood, OperatorState
from monitor.store.sqlite import SqliteStore
from tests.support.kube import MODEL, chunk

GOOD, BAD = "good-aaaa", "bad-bbbb"
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database where BAD serves after GOOD was promoted, with broken score parity."""
    monkeypatch.setenv("MONITOR_KUBERNETES", "off")
    monkeypatch.setenv("MONITOR_NAMESPACE", "demo")
    path = tmp_path / "monitor.db"
    with SqliteStore(path) as store:
        for version in (GOOD, BAD):
            store.register(
                {
                    "model": MODEL,
                    "version": version,
                    "metrics": {"reference": {"roc_auc": 0.84}},
                    "reference": [],
                    "artifact": base64.b64encode(b"unused").decode(),
                }
            )
        for i in range(6):
            good = chunk(GOOD, i, known_good_version=None)
            store.save_chunk(replace(good, first_seq=i * 500, last_seq=i * 500 + 499))
        bad = chunk(BAD, 0, known_good_version=GOOD, parity=0.4)
        store.save_chunk(replace(bad, first_seq=5000, last_seq=5499))
        OperatorState(store).set_known_good(MODEL, KnownGood(GOOD, 1, "2026-03-01T12:00:00Z"))
    return path


def _patch_in(output: str) -> list[dict[str, object]]:
    start = output.index("[", output.index("JSON patch for"))
    return list(json.loads(output[start:]))


def test_dry_run_prints_the_decision_and_patch_and_writes_nothing(db: Path) -> None:
    before = db.read_bytes()
    result = runner.invoke(app, ["reconcile", "--once", "--dry-run", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "rollback" in result.output and "ScoreParity" in result.output
    template = next(op for op in _patch_in(result.output) if op["path"] == "/spec/template")
    assert template["value"]["metadata"]["annotations"][VERSION_ANNOTATION] == GOOD  # type: ignore[index]
    with SqliteStore(db) as store:
        assert store.audit(model=MODEL) == []
        assert OperatorState(store).incident("demo", "rain-forecast").last_rollback is None
    assert db.read_bytes() == before


def test_once_without_dry_run_acts_as_the_loop_would(db: Path) -> None:
    result = runner.invoke(app, ["reconcile", "--once", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "dry-run" in result.output  # the offline ModelMonitor is in dryRun mode
    with SqliteStore(db) as store:
        [audit] = store.audit(model=MODEL, kind="dry-run-rollback")
        assert audit["trigger"] == "parity" and audit["toVersion"] == GOOD
        incident = OperatorState(store).incident("demo", "rain-forecast")
        assert incident.last_rollback is not None and incident.last_rollback.dry_run


def test_a_missing_database_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["reconcile", "--once", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "no monitor database" in result.output
