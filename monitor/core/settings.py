"""The monitor's one settings object (environment prefix `MONITOR_`).

Every field is documented, because `docs/monitor.md` and the chart's values point here. The
role tokens are `SecretStr`s: `effective()` (what start-up logs) can never print them.
Importing this module also switches off library telemetry (NannyML usage logging, BentoML
tracking) before anything imports those libraries: the monitor runs inside clusters that must
not phone home.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEMETRY_OFF = {"NML_DISABLE_USAGE_LOGGING": "1", "BENTOML_DO_NOT_TRACK": "true"}
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

logger = logging.getLogger("modelguard.monitor")


def disable_telemetry() -> None:
    """Set the opt-outs in this process's environment (inherited by child processes)."""
    for key, value in TELEMETRY_OFF.items():
        os.environ[key] = value


disable_telemetry()


def pod_namespace() -> str:
    """The namespace this pod runs in (service-account mount), else `default`."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def pod_name() -> str:
    """This replica's name: `POD_NAME` (from the downward API), else the
    hostname (a pod's hostname is its name)."""
    return os.environ.get("POD_NAME") or socket.gethostname()


class MonitorSettings(BaseSettings):
    """Everything the monitor reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="MONITOR_", extra="ignore", frozen=True, populate_by_name=True
    )

    db_path: Path = Field(
        default=Path("var/monitor.db"),
        description="SQLite database file (WAL); put it on the persistent volume",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://... : keep the data on this PostgreSQL server instead of"
        " the SQLite file `db_path`",
    )
    host: str = Field(default="0.0.0.0", description="Address the HTTP server binds")  # noqa: S104
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP port")
    # One bearer token per role (monitor/api/auth.py, docs/monitor.md#trust-boundary); unset =
    # that role's endpoints answer 503. MONITOR_REGISTRATION_TOKEN, the one shared token of
    # earlier releases, is still read as the predictor token.
    predictor_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MONITOR_PREDICTOR_TOKEN", "MONITOR_REGISTRATION_TOKEN"),
        description="Predictors' bearer token: POST /v1/records and registering their own"
        " version (POST /v1/models); MONITOR_REGISTRATION_TOKEN is read when this is unset",
    )
    labels_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MONITOR_LABELS_TOKEN"),
        description="Label feeders' bearer token: POST /v1/labels",
    )
    operator_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MONITOR_OPERATOR_TOKEN"),
        description="Operators' bearer token: clear a rejection, declare a known-good,"
        " register a version under any name; it may also read",
    )
    reader_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MONITOR_READER_TOKEN"),
        description="Readers' bearer token for models, chunks, audit, decisions and reports;"
        " unset = those reads are open (loopback use; the chart always sets it)",
    )
    artifact_memory_bytes: int = Field(
        default=1536 * 1024**2,
        ge=256 * 1024**2,
        description="Address-space limit (RLIMIT_AS) of the child process that first loads"
        " and scores an uploaded booster; over it the registration is refused (400)",
    )
    artifact_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest the child process may take to load and score an uploaded"
        " booster; longer: the registration is refused (400)",
    )
    chunk_size: int = Field(
        default=500,
        ge=10,
        description="Rows per analysis chunk of a model no ModelMonitor names (a"
        " ModelMonitor's chunkSize / chunkPeriod wins), and of the offline ModelMonitors",
    )
    estimate_interval_level: float = Field(
        default=0.9,
        gt=0.5,
        lt=1.0,
        description="Stated coverage of the interval around every label-free estimate"
        " (calibrated on the reference and the version's own past errors,"
        " docs/analysis.md#intervals); the coverage alert compares with it",
    )
    policy_file: Path | None = Field(
        default=None,
        description="Offline only (no cluster): YAML of ModelMonitor specs per model"
        " (`{model: spec}`); a model not in it gets the default spec",
    )
    analysis_interval_seconds: float = Field(
        default=30.0, gt=0, description="Pause between analysis cycles"
    )
    reconcile_interval_seconds: float = Field(
        default=30.0, gt=0, description="Pause between operator reconciliations"
    )
    operator: bool = Field(
        default=True,
        description="Run the reconcile loop (offline dryRun when there is no cluster); false"
        " for a pure measuring monitor: no known-good promotion, no decisions",
    )
    kubernetes: Literal["off", "auto", "incluster", "kubeconfig"] = Field(
        default="auto",
        description="Kubernetes access: off (no API calls), auto (in-cluster if available,"
        " else kubeconfig, else off), incluster, or kubeconfig",
    )
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig file for kubernetes=kubeconfig (default ~/.kube)"
    )
    namespace: str = Field(
        default_factory=pod_namespace,
        description="Namespace whose ModelMonitors are watched (default: the pod's own)",
    )
    max_records_per_request: int = Field(
        default=10_000, ge=1, description="Most records (or labels) in one ingest request"
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (larger: 413); registrations carry the"
        " model artifact, so keep it above the artifact's base64 size",
    )
    retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Records (with their labels) and labels without a record are deleted this"
        " many days after they arrived; chunk evidence, state and the audit log are kept."
        " 0 = keep everything",
    )
    retention_interval_seconds: float = Field(
        default=600.0, gt=0, description="Pause between retention passes"
    )
    retention_batch_rows: int = Field(
        default=5_000, ge=1, description="Most rows one retention transaction deletes"
    )
    analysis_worker: bool = Field(
        default=True,
        description="Run the analysis cycle and build reports in a worker process (same"
        " database, WAL), so a cycle never holds the server's interpreter; false = in a"
        " thread of the server",
    )
    report_concurrency: int = Field(
        default=2,
        ge=1,
        description="Reports built at once; more concurrent GET /reports answer 503 with"
        " Retry-After",
    )
    report_dir: Path = Field(
        default=Path("var/reports"), description="Where the CLI and the server write reports"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the monitor's loggers"
    )
    # Several replicas on one PostgreSQL store (docs/monitor.md#several-replicas): every
    # replica serves the API, only the holder of a coordination.k8s.io/v1 Lease runs the
    # analysis cycle, the reconcile loop and retention.
    leader_election: bool = Field(
        default=False,
        description="Elect one leader among the replicas with a Lease (needs an API server"
        " and MONITOR_DATABASE_URL); only the leader analyses, reconciles and deletes expired"
        " rows. Off: this process always does (one replica)",
    )
    lease_name: str = Field(
        default="modelguard-monitor",
        min_length=1,
        max_length=253,
        description="Name of the Lease the replicas compete for",
    )
    lease_namespace: str | None = Field(
        default=None,
        description="Namespace of the Lease (default: `namespace`, the pod's own)",
    )
    lease_duration_seconds: float = Field(
        default=15.0,
        ge=1.0,
        description="How long a Lease stays valid after its last renewal: a dead leader is"
        " replaced within about this long",
    )
    lease_renew_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Pause between renewals by the leader (and tries by the others); must"
        " be below lease_duration_seconds. A leader that could not renew for"
        " duration - renew stops acting",
    )
    leader_identity: str = Field(
        default_factory=pod_name,
        min_length=1,
        description="This replica's holderIdentity in the Lease (default: POD_NAME, else the"
        " hostname); must differ between replicas",
    )

    @model_validator(mode="after")
    def _leader_election_needs_a_shared_store(self) -> MonitorSettings:
        if self.leader_election and self.database_url is None:
            raise ValueError(
                "MONITOR_LEADER_ELECTION=true needs MONITOR_DATABASE_URL (PostgreSQL): replicas"
                " cannot share the SQLite file MONITOR_DB_PATH"
            )
        if self.lease_renew_seconds >= self.lease_duration_seconds:
            raise ValueError(
                "MONITOR_LEASE_RENEW_SECONDS must be below MONITOR_LEASE_DURATION_SECONDS"
                f" ({self.lease_renew_seconds:g} >= {self.lease_duration_seconds:g})"
            )
        return self

    @property
    def effective_lease_namespace(self) -> str:
        return self.lease_namespace or self.namespace

    def effective(self) -> dict[str, Any]:
        """The settings as loggable JSON values, secrets masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        return shown

    def token(self, role: str = "predictor") -> str | None:
        """`role`'s token in clear (only for the constant-time comparison); None = unset."""
        secret = getattr(self, f"{role}_token")
        return secret.get_secret_value() or None if isinstance(secret, SecretStr) else None


def log_effective(settings: MonitorSettings) -> None:
    logger.info("effective settings: %s", settings.effective())
