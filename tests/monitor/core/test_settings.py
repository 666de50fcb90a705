"""Monitor settings: groups read by the old variable names, defaults, validation, masked
secrets, no telemetry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.core.settings import (
    TELEMETRY_OFF,
    Group,
    HttpSettings,
    MonitorSettings,
    StoreSettings,
    log_effective,
)
from tests.support.paths import REPO

S = MonitorSettings

# Every variable the flat settings of earlier releases read, a value other than its default,
# and where the grouped settings hold it.
OLD_VARIABLES: list[tuple[str, str, Callable[[S], Any], Any]] = [
    ("MONITOR_DB_PATH", "/data/x.db", lambda s: s.store.db_path, Path("/data/x.db")),
    (
        "MONITOR_DATABASE_URL",
        "postgresql://db/m",
        lambda s: s.store.database_url and s.store.database_url.get_secret_value(),
        "postgresql://db/m",
    ),
    ("MONITOR_RETENTION_DAYS", "7", lambda s: s.store.retention_days, 7.0),
    ("MONITOR_RETENTION_INTERVAL_SECONDS", "60", lambda s: s.store.retention_interval_seconds, 60),
    ("MONITOR_RETENTION_BATCH_ROWS", "9", lambda s: s.store.retention_batch_rows, 9),
    ("MONITOR_HOST", "127.0.0.1", lambda s: s.http.host, "127.0.0.1"),
    ("MONITOR_PORT", "9999", lambda s: s.http.port, 9999),
    ("MONITOR_MAX_RECORDS_PER_REQUEST", "5", lambda s: s.http.max_records_per_request, 5),
    ("MONITOR_MAX_BODY_BYTES", "2048", lambda s: s.http.max_body_bytes, 2048),
    ("MONITOR_REPORT_CONCURRENCY", "4", lambda s: s.http.report_concurrency, 4),
    ("MONITOR_PREDICTOR_TOKEN", "p", lambda s: s.tokens.of("predictor"), "p"),
    ("MONITOR_REGISTRATION_TOKEN", "r", lambda s: s.tokens.of("predictor"), "r"),
    ("MONITOR_LABELS_TOKEN", "l", lambda s: s.tokens.of("labels"), "l"),
    ("MONITOR_OPERATOR_TOKEN", "o", lambda s: s.tokens.of("operator"), "o"),
    ("MONITOR_READER_TOKEN", "e", lambda s: s.tokens.of("reader"), "e"),
    (
        "MONITOR_MODEL_TOKENS_FILE",
        "/etc/t.json",
        lambda s: s.tokens.model_tokens_file,
        Path("/etc/t.json"),
    ),
    (
        "MONITOR_ARTIFACT_MEMORY_BYTES",
        str(512 * 1024**2),
        lambda s: s.artifacts.memory_bytes,
        512 * 1024**2,
    ),
    ("MONITOR_ARTIFACT_TIMEOUT_SECONDS", "5", lambda s: s.artifacts.timeout_seconds, 5.0),
    ("MONITOR_CHUNK_SIZE", "50", lambda s: s.analysis.chunk_size, 50),
    ("MONITOR_ESTIMATE_INTERVAL_LEVEL", "0.8", lambda s: s.analysis.estimate_interval_level, 0.8),
    ("MONITOR_ANALYSIS_INTERVAL_SECONDS", "2.5", lambda s: s.analysis.interval_seconds, 2.5),
    ("MONITOR_ANALYSIS_WORKER", "false", lambda s: s.analysis.worker, False),
    ("MONITOR_ANALYSIS_CACHE_VERSIONS", "3", lambda s: s.analysis.cache_versions, 3),
    ("MONITOR_ANALYSIS_WORKERS", "3", lambda s: s.analysis.workers, 3),
    ("MONITOR_ANALYSIS_LEASE_SECONDS", "12", lambda s: s.analysis.lease_seconds, 12.0),
    ("MONITOR_REPORT_DIR", "/r", lambda s: s.analysis.report_dir, Path("/r")),
    ("MONITOR_OPERATOR", "false", lambda s: s.operator.enabled, False),
    ("MONITOR_RECONCILE_INTERVAL_SECONDS", "3", lambda s: s.operator.reconcile_interval_seconds, 3),
    ("MONITOR_POLICY_FILE", "/p.yaml", lambda s: s.operator.policy_file, Path("/p.yaml")),
    ("MONITOR_KUBERNETES", "off", lambda s: s.kubernetes.access, "off"),
    ("MONITOR_KUBECONFIG", "/k", lambda s: s.kubernetes.kubeconfig, Path("/k")),
    ("MONITOR_NAMESPACE", "ml", lambda s: s.kubernetes.namespace, "ml"),
    ("MONITOR_LEADER_ELECTION", "true", lambda s: s.leadership.enabled, True),
    ("MONITOR_LEASE_NAME", "l2", lambda s: s.leadership.lease_name, "l2"),
    ("MONITOR_LEASE_NAMESPACE", "ops", lambda s: s.effective_lease_namespace, "ops"),
    ("MONITOR_LEASE_DURATION_SECONDS", "30", lambda s: s.leadership.lease_duration_seconds, 30),
    ("MONITOR_LEASE_RENEW_SECONDS", "2", lambda s: s.leadership.lease_renew_seconds, 2),
    ("MONITOR_LEADER_IDENTITY", "me", lambda s: s.leadership.identity, "me"),
    ("MONITOR_LOG_LEVEL", "DEBUG", lambda s: s.logging.level, "DEBUG"),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MONITOR_"):
            monkeypatch.delenv(key)


def test_defaults_follow_the_contract() -> None:
    settings = MonitorSettings()
    assert settings.http.port == 8080
    assert settings.analysis.chunk_size == 500
    tokens = settings.tokens
    assert [tokens.predictor, tokens.labels, tokens.operator, tokens.reader] == [None] * 4
    assert settings.kubernetes.namespace == "default"  # not in a pod


@pytest.mark.parametrize(("variable", "value", "read", "expected"), OLD_VARIABLES)
def test_every_variable_keeps_its_name(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    read: Callable[[S], Any],
    expected: Any,
) -> None:
    assert read(MonitorSettings()) != expected  # the value is not the default
    monkeypatch.setenv(variable, value)
    if variable == "MONITOR_LEADER_ELECTION":  # needs a shared store
        monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql://db/m")
    assert read(MonitorSettings()) == expected


def test_the_settings_read_no_variable_beyond_the_old_ones() -> None:
    assert set(MonitorSettings.environment()) == {v for v, *_ in OLD_VARIABLES}


def test_a_value_given_to_a_group_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MONITOR_DB_PATH", "/from/env.db")
    monkeypatch.setenv("MONITOR_RETENTION_DAYS", "3")
    given = MonitorSettings(store=StoreSettings(db_path=tmp_path / "m.db"))
    assert (given.store.db_path, given.store.retention_days) == (tmp_path / "m.db", 3.0)


def test_flat_names_of_earlier_releases_are_refused_as_arguments() -> None:
    with pytest.raises(ValidationError):
        MonitorSettings.model_validate({"db_path": "x.db"})


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("MONITOR_PORT", "0", "port"),
        ("MONITOR_KUBERNETES", "sometimes", "access"),
        ("MONITOR_CHUNK_SIZE", "x", "chunk_size"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, field: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        MonitorSettings()
    assert f"\n{field}\n" in str(info.value)


def test_the_tokens_are_never_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for role in ("predictor", "labels", "operator", "reader"):
        monkeypatch.setenv(f"MONITOR_{role.upper()}_TOKEN", f"s3cr3t-{role}")
    settings = MonitorSettings()
    assert settings.tokens.of("operator") == "s3cr3t-operator"
    assert "s3cr3t" not in repr(settings)
    with caplog.at_level(logging.INFO, logger="modelguard.monitor"):
        log_effective(settings)
    assert "s3cr3t" not in caplog.text
    assert "'operator_token': '**********'" in caplog.text and "'db_path'" in caplog.text


def test_effective_names_each_value_by_its_variable() -> None:
    shown = MonitorSettings(http=HttpSettings(port=9000)).effective()
    primary = {v for v, (g, f) in MonitorSettings.environment().items()} - {
        "MONITOR_REGISTRATION_TOKEN"
    }
    assert {f"MONITOR_{k.upper()}" for k in shown} == primary
    assert (shown["port"], shown["kubernetes"], shown["leader_election"]) == (9000, "auto", False)


def test_the_registration_token_of_earlier_releases_is_the_predictor_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITOR_REGISTRATION_TOKEN", "old-shared")
    assert MonitorSettings().tokens.of("predictor") == "old-shared"
    assert MonitorSettings().tokens.of("operator") is None  # operators need their own now
    monkeypatch.setenv("MONITOR_PREDICTOR_TOKEN", "new")
    assert MonitorSettings().tokens.of("predictor") == "new"


def test_every_field_is_documented() -> None:
    groups = [f.annotation for f in MonitorSettings.model_fields.values()]
    undocumented = [
        f"{g.__name__}.{n}"
        for g in groups
        if isinstance(g, type) and issubclass(g, Group)
        for n, f in g.model_fields.items()
        if not f.description
    ]
    assert len(groups) == 9 and undocumented == []


def test_importing_settings_switches_telemetry_off() -> None:
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    code = "import os, monitor.core.settings; print(os.environ.get('NML_DISABLE_USAGE_LOGGING'),"
    code += " os.environ.get('BENTOML_DO_NOT_TRACK'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1", "true"]
