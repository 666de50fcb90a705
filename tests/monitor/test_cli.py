"""`python -m monitor` commands on a real database file (status, audit, clear-rejection,
candidates)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from monitor.cli import app
from monitor.store.sqlite import SqliteStore
from tests.support.candidates import register_bare, worse_chunks
from tests.support.paths import REPO

runner = CliRunner()


def fill(db: Path) -> None:
    with SqliteStore(db) as store:
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
    with SqliteStore(db) as store:
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
    for command in ("serve", "report", "audit", "clear-rejection", "status", "candidates"):
        assert command in out.stdout


def fill_candidates(db: Path) -> None:
    """v2 a declared candidate of m, scored on four of v1's chunks, 0.06 below it."""
    from monitor.memory.candidates import CandidateState

    fill(db)
    with SqliteStore(db) as store:
        register_bare(store, "m", "v2")
        state = CandidateState(store)
        state.add("m", "v2", "api", at="2024-01-01T00:00:00+00:00", by="operator")
        state.save_chunks("m", "v2", worse_chunks())


def test_candidates_shows_each_verdict_with_its_gap_and_band(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill_candidates(db)
    result = runner.invoke(app, ["candidates", "--db", str(db)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "v2" in result.output and "Worse" in result.output
    assert "-0.0597 [-0.06" in result.output and "4 / 2,000" in result.output
    as_json = runner.invoke(app, ["candidates", "--model", "m", "--json", "--db", str(db)])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["model"] == "m"
    [found] = doc["candidates"]
    assert found["version"] == "v2" and found["sources"] == ["api"]
    verdict = found["verdict"]
    assert verdict["verdict"] == "Worse" and verdict["baseline_version"] == "v1"
    assert verdict["chunks"] == 4 and verdict["rows"] == 2000 and verdict["chunks_needed"] is None
    everything = runner.invoke(app, ["candidates", "--json", "--db", str(db)])
    assert [d["model"] for d in json.loads(everything.output)] == ["m"]


def test_candidates_refuses_an_unknown_model(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)
    result = runner.invoke(app, ["candidates", "--model", "nope", "--db", str(db)])
    assert result.exit_code == 2 and "unknown" in result.output
    assert runner.invoke(app, ["candidates", "--bogus"]).exit_code == 2
    none = runner.invoke(app, ["candidates", "--model", "m", "--db", str(db)])
    assert none.exit_code == 0 and "no candidates of m" in none.output


def test_known_good_set_declares_a_registered_version_and_refuses_others(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)  # v1 registered and rejected
    with SqliteStore(db) as store:
        register_bare(store, "m", "v2")
    args = ["known-good", "set", "m", "--db", str(db), "--actor", "alice"]
    unknown = runner.invoke(app, [*args[:3], "v9", *args[3:]])
    assert unknown.exit_code == 2 and "version: m:v9 is not registered" in unknown.output
    rejected = runner.invoke(app, [*args[:3], "v1", *args[3:]])
    assert rejected.exit_code == 2 and "clear it first (clear-rejection)" in rejected.output
    done = runner.invoke(app, [*args[:3], "v2", *args[3:]])
    assert done.exit_code == 0, done.output
    assert "m:v2 is known-good (before: none)" in done.output
    with SqliteStore(db) as store:
        [entry] = store.audit("m", "known-good-declared")
    assert (entry["version"], entry["by"], entry["previous"]) == ("v2", "cli:alice", None)


def test_clear_rejection_of_an_unknown_version_says_it_was_not_rejected(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    fill(db)
    args = ["clear-rejection", "--model", "m", "--version", "v9", "--db", str(db)]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "m:v9 was not rejected" in result.output


def test_serve_with_an_unusable_setting_exits_2_naming_it(tmp_path: Path) -> None:
    """A bad value or an unreadable credentials file stops `serve` before it binds: exit
    code 2 and one line naming the setting, not a traceback."""
    cases = [
        ({"MONITOR_PORT": "eighty"}, "port"),
        ({"MONITOR_MODEL_TOKENS_FILE": str(tmp_path / "absent.json")}, "MONITOR_MODEL_TOKENS_FILE"),
    ]
    for env, named in cases:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "serve"],
            cwd=REPO,
            env={**_clean_env(), "MONITOR_DB_PATH": str(tmp_path / "m.db"), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr[-2000:]
        out = done.stdout + done.stderr
        assert named in out and "invalid settings" in out and "Traceback" not in out


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
