"""Monitor settings: environment prefix, defaults, validation, masked secrets, no telemetry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.core.settings import TELEMETRY_OFF, MonitorSettings, log_effective
from tests.support.paths import REPO


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MONITOR_"):
            monkeypatch.delenv(key)
    settings = MonitorSettings()
    assert settings.port == 8080
    assert settings.chunk_size == 500
    assert [settings.token(r) for r in ("predictor", "labels", "operator", "reader")] == [None] * 4
    assert settings.namespace == "default"  # not in a pod


def test_environment_prefix_and_types(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MONITOR_DB_PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("MONITOR_PORT", "9999")
    monkeypatch.setenv("MONITOR_KUBERNETES", "off")
    monkeypatch.setenv("MONITOR_NAMESPACE", "ml")
    monkeypatch.setenv("MONITOR_ANALYSIS_INTERVAL_SECONDS", "2.5")
    settings = MonitorSettings()
    assert settings.db_path == tmp_path / "x.db"
    assert settings.port == 9999
    assert settings.kubernetes == "off"
    assert settings.namespace == "ml"
    assert settings.analysis_interval_seconds == 2.5


@pytest.mark.parametrize(
    ("key", "value"),
    [("MONITOR_PORT", "0"), ("MONITOR_KUBERNETES", "sometimes"), ("MONITOR_CHUNK_SIZE", "x")],
)
def test_bad_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        MonitorSettings()
    assert key.removeprefix("MONITOR_").lower() in str(info.value)


def test_the_tokens_are_never_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for role in ("predictor", "labels", "operator", "reader"):
        monkeypatch.setenv(f"MONITOR_{role.upper()}_TOKEN", f"s3cr3t-{role}")
    settings = MonitorSettings()
    assert settings.token("operator") == "s3cr3t-operator"
    assert "s3cr3t" not in repr(settings)
    with caplog.at_level(logging.INFO, logger="modelguard.monitor"):
        log_effective(settings)
    assert "s3cr3t" not in caplog.text
    assert "operator_token" in caplog.text and "db_path" in caplog.text


def test_the_registration_token_of_earlier_releases_is_the_predictor_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MONITOR_PREDICTOR_TOKEN", raising=False)
    monkeypatch.setenv("MONITOR_REGISTRATION_TOKEN", "old-shared")
    assert MonitorSettings().token("predictor") == "old-shared"
    assert MonitorSettings().token("operator") is None  # operators need their own now
    monkeypatch.setenv("MONITOR_PREDICTOR_TOKEN", "new")
    assert MonitorSettings().token("predictor") == "new"


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in MonitorSettings.model_fields.items() if not f.description]
    assert undocumented == []


def test_importing_settings_switches_telemetry_off() -> None:
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    code = "import os, monitor.core.settings; print(os.environ.get('NML_DISABLE_USAGE_LOGGING'),"
    code += " os.environ.get('BENTOML_DO_NOT_TRACK'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1", "true"]
