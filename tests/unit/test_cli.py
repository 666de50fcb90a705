"""`python -m monitor` commands on a real database file (status, audit, clear-rejection)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from monitor.cli import app
from monitor.store.sqlite import Store

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def fill(db: Path) -> None:
    with Store(db) as store:
        store.register(
            {
                "model": "m",
                "version": "v1",
                "release": "good",
                "schema": {"features": [{"name": "x"}]},
                "reference": [],
                "artifact": base64.b64encode(b"x").decode(),
            }
        )
        store.append_records(
            [
                {
                    "prediction_id": f"p{i}",
                    "model": "m",
                    "version": "v1",
                    "timestamp": "2013-07-01T00:00:00Z",
                    "features": {"x": i},
                    "probability": 0.5,
                    "predicted_class": 1,
                }
                for i in range(10)
            ]
        )
        store.append_labels([{"prediction_id": f"p{i}", "label": 1} for i in range(4)])
        store.put_state("rejected/m", {"versions": {"v1": {"reason": "estimated gap"}}})


def test_status_shows_versions_records_and_label_coverage(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)
    result = runner.invoke(app, ["status", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "v1" in result.output and "rejected" in result.output
    assert "4 (40.0%)" in result.output


def test_clear_rejection_then_audit(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)
    args = ["clear-rejection", "--model", "m", "--version", "v1", "--db", str(db)]
    result = runner.invoke(app, [*args, "--actor", "alice"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, args).exit_code == 1  # nothing left to clear
    with Store(db) as store:
        assert store.rejected_versions("m") == []
    audit = runner.invoke(app, ["audit", "--model", "m", "--db", str(db)])
    assert audit.exit_code == 0
    assert "rejection-cleared" in audit.output and "alice" in audit.output


def test_a_missing_database_is_reported_not_created(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert not (tmp_path / "none.db").exists()


def test_python_dash_m_monitor_is_the_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("serve", "report", "audit", "clear-rejection", "status"):
        assert command in out.stdout
