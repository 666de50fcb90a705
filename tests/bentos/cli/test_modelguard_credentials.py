"""`modelguard credentials MODEL` (typer's CliRunner): the printed Secrets' tokens are the ones
the monitor's own parser (monitor/api/model_tokens.py) accepts from the written file; bad
input exits 2 and leaves the file as it was."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from bentos.cli.app import app
from monitor.api.model_tokens import digest, parse

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["credentials", *args])
    return result.exit_code, result.stdout, result.stderr


def test_tokens_in_the_secrets_match_the_digests_the_monitor_reads(tmp_path: Path) -> None:
    path = tmp_path / "model-tokens.json"
    code, out, _ = run("rain_forecast", "--tokens-file", str(path), "-n", "ml")
    assert code == 0
    secrets = {
        d["metadata"]["labels"]["modelguard.dev/token-role"]: d for d in yaml.safe_load_all(out)
    }
    assert {s["metadata"]["name"] for s in secrets.values()} == {
        "rain-forecast-predictor-token",
        "rain-forecast-labels-token",
    }
    assert all(s["metadata"]["namespace"] == "ml" for s in secrets.values())
    code, out, _ = run("churn", "--tokens-file", str(path), "--global-tokens-too")
    assert code == 0
    loaded = parse(path.read_bytes(), str(path))
    for role, secret in secrets.items():
        token = secret["stringData"]["token"]
        assert loaded.digests[("rain_forecast", role)] == digest(token)
        assert token not in path.read_text()  # the monitor's file holds digests only
    assert loaded.global_too == {"churn"}


def test_bad_name_or_a_listed_model_exits_2_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model-tokens.json"
    assert run("a", "--tokens-file", str(path))[0] == 0
    before = path.read_text()
    code, _, err = run("Not A Name", "--tokens-file", str(path))
    assert code == 2 and "model 'Not A Name'" in err
    code, _, err = run("a", "--tokens-file", str(path))
    assert code == 2 and "already has credentials" in err
    assert path.read_text() == before
    assert run("a", "--tokens-file", str(path), "--replace")[0] == 0
    assert json.loads(path.read_text())["a"] != json.loads(before)["a"]
