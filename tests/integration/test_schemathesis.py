"""Contract conformance: schemathesis with every check against both OpenAPI documents of the
real servers (the monitor's /openapi.json, the predictor's /docs.json), a bounded number of
examples per operation so it fits CI: `EXAMPLES`, and 100 on the monitor's registration and
candidate POSTs (tests/support/schemathesis.toml), where a schema validator raising anything
but a ValueError once answered 500. Each monitor request carries the token of the role its
route needs (tests/support/schemathesis_hooks.py). Run through schemathesis's own CLI, so
what fails here is what `schemathesis run` reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.monitor import running_monitor
from tests.support.predictor import running_predictor

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = 10  # per operation and phase


def schemathesis(url: str, workdir: Path, tokens: dict[str, str] | None = None) -> str:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
        "MODELGUARD_TEST_TOKENS": json.dumps(tokens or {}),
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(REPO / "tests/support/schemathesis.toml"),
            "run",
            url,
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--no-color",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-12_000:]
    return output


def test_monitor_conforms_to_its_openapi(tmp_path: Path, registrations: dict[str, Any]) -> None:
    with running_monitor(tmp_path, reader_token=True) as mon:  # every route needs a token
        body = registrations["good"].model_dump(by_alias=True, mode="json")
        assert httpx.post(
            mon.url + "/v1/models", json=body, headers=mon.auth, timeout=60
        ).is_success
        schemathesis(mon.url + "/openapi.json", tmp_path, mon.tokens)
        assert httpx.get(mon.url + "/livez").status_code == 200


def test_predictor_conforms_to_its_openapi(
    tmp_path: Path, trained_models: dict[str, str], bentoml_home: Path
) -> None:
    env = {
        "BENTOML_HOME": str(bentoml_home),
        "PREDICTOR_MODEL_TAG": trained_models["good"],
        "PREDICTOR_MAX_BATCH": "20",
        "PREDICTOR_BATCH_MAX_RECORDS": "20",
    }
    with running_predictor(env, tmp_path / "serve.log") as proc:
        schemathesis(proc.url + "/docs.json", tmp_path)
        assert httpx.get(proc.url + "/livez").status_code == 200
