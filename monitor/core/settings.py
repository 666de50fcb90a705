"""The monitor's one settings object, in documented groups (kopf's `OperatorSettings`).

`MonitorSettings().http.port`, `.store.db_path`, `.leadership.lease_duration_seconds`...: each
group is read from the environment on its own, by the `MONITOR_*` names the chart, the docs
and users set. A field reads `MONITOR_<FIELD>` unless its `env` lists other names (first
set wins: `tokens.predictor` also reads the `MONITOR_REGISTRATION_TOKEN` of earlier releases).
Values given to a group's constructor win over the environment. Every field is documented,
because `docs/monitor.md` and the chart's values point here. The role tokens are
`SecretStr`s: `effective()` (what start-up logs) can never print them.
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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

TELEMETRY_OFF = {"NML_DISABLE_USAGE_LOGGING": "1", "BENTOML_DO_NOT_TRACK": "true"}
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
Role = Literal["predictor", "labels", "operator", "reader"]

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


def env(*names: str) -> dict[str, Any]:
    """A field's environment variables when they are not `MONITOR_<FIELD>` (first set wins)."""
    return {"env": list(names)}


def variables(name: str, field: FieldInfo) -> list[str]:
    """The environment variables field `name` reads, in order."""
    extra = field.json_schema_extra
    named = extra.get("env") if isinstance(extra, dict) else None
    return [str(n) for n in named] if isinstance(named, list) else [f"MONITOR_{name.upper()}"]


class ConfigError(ValueError):
    """A setting (or a file it names) is unusable: `monitor serve` stops with exit code 2
    and this message, which names the setting and the problem (never a token)."""


class _Environment(PydanticBaseSettingsSource):
    """The group's fields from the environment (names case-insensitive), keyed by field name
    so that a value given to the constructor wins."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        environ = {k.upper(): v for k, v in os.environ.items()}
        for var in variables(field_name, field):
            if var in environ:
                return environ[var], var, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


class Group(BaseSettings):
    """One group of settings, read from the `MONITOR_*` environment when constructed."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)


class StoreSettings(Group):
    """Where the data lives, and how long records and labels are kept."""

    db_path: Path = Field(
        default=Path("var/monitor.db"),
        description="SQLite database file (WAL); put it on the persistent volume",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://... : keep the data on this PostgreSQL server instead of"
        " the SQLite file `db_path`",
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


class HttpSettings(Group):
    """The HTTP server and what one request may ask of it."""

    host: str = Field(default="0.0.0.0", description="Address the HTTP server binds")  # noqa: S104
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP port")
    max_records_per_request: int = Field(
        default=10_000, ge=1, description="Most records (or labels) in one ingest request"
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (larger: 413); registrations carry the"
        " model artifact, so keep it above the artifact's base64 size",
    )
    report_concurrency: int = Field(
        default=2,
        ge=1,
        description="Reports built at once; more concurrent GET /reports answer 503 with"
        " Retry-After",
    )


class TokenSettings(Group):
    """One bearer token per role (monitor/api/auth.py, docs/monitor.md#trust-boundary); unset =
    that role's endpoints answer 503. Per-model predictor and labels tokens come from a file
    (monitor/api/model_tokens.py)."""

    predictor: SecretStr | None = Field(
        default=None,
        json_schema_extra=env("MONITOR_PREDICTOR_TOKEN", "MONITOR_REGISTRATION_TOKEN"),
        description="Predictors' bearer token: POST /v1/records and registering their own"
        " version (POST /v1/models); MONITOR_REGISTRATION_TOKEN is read when this is unset",
    )
    labels: SecretStr | None = Field(
        default=None,
        json_schema_extra=env("MONITOR_LABELS_TOKEN"),
        description="Label feeders' bearer token: POST /v1/labels",
    )
    operator: SecretStr | None = Field(
        default=None,
        json_schema_extra=env("MONITOR_OPERATOR_TOKEN"),
        description="Operators' bearer token: clear a rejection, declare a known-good,"
        " register a version under any name; it may also read",
    )
    reader: SecretStr | None = Field(
        default=None,
        json_schema_extra=env("MONITOR_READER_TOKEN"),
        description="Readers' bearer token for models, chunks, audit, decisions and reports;"
        " unset = those reads are open (loopback use; the chart always sets it)",
    )
    model_tokens_file: Path | None = Field(
        default=None,
        description="JSON file (a mounted Secret) of per-model credentials,"
        ' {"<model>": {"predictor": token, "labels": token}}, each token in clear or as'
        " sha256:<hex>; a listed model is written only with its own tokens (or the operator's),"
        " never with the global predictor/labels token; re-read when it changes (no restart)",
    )

    def of(self, role: Role) -> str | None:
        """`role`'s token in clear (only for the constant-time comparison); None = unset."""
        secret: SecretStr | None = getattr(self, role)
        return secret.get_secret_value() or None if secret is not None else None


class ArtifactSettings(Group):
    """The child process that first loads and scores an uploaded booster."""

    memory_bytes: int = Field(
        default=1536 * 1024**2,
        ge=256 * 1024**2,
        json_schema_extra=env("MONITOR_ARTIFACT_MEMORY_BYTES"),
        description="Address-space limit (RLIMIT_AS) of the child process that first loads"
        " and scores an uploaded booster; over it the registration is refused (400)",
    )
    timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        json_schema_extra=env("MONITOR_ARTIFACT_TIMEOUT_SECONDS"),
        description="Longest the child process may take to load and score an uploaded"
        " booster; longer: the registration is refused (400)",
    )


class AnalysisSettings(Group):
    """The analysis cycle and the reports."""

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
    interval_seconds: float = Field(
        default=30.0,
        gt=0,
        json_schema_extra=env("MONITOR_ANALYSIS_INTERVAL_SECONDS"),
        description="Pause between analysis cycles",
    )
    worker: bool = Field(
        default=True,
        json_schema_extra=env("MONITOR_ANALYSIS_WORKER"),
        description="Run the analysis cycle and build reports in a worker process (same"
        " database, WAL), so a cycle never holds the server's interpreter; false = in a"
        " thread of the server",
    )
    report_dir: Path = Field(
        default=Path("var/reports"), description="Where the CLI and the server write reports"
    )
    cache_versions: int = Field(
        default=64,
        ge=1,
        json_schema_extra=env("MONITOR_ANALYSIS_CACHE_VERSIONS"),
        description="Fitted model versions kept in the analysis worker's memory (~3 MB each,"
        " bench/fit_cache.py), least recently analysed evicted first; an evicted one is"
        " loaded again from the store's saved fits, not refitted"
        " (docs/analysis.md#fitted-state)",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        json_schema_extra=env("MONITOR_ANALYSIS_WORKERS"),
        description="Analysis worker processes (each analyses one model version at a time,"
        " oldest pending evidence first); 0 = one per CPU available to the process"
        " (its CPU affinity and the cgroup's cpu.max quota)",
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=2.0,
        json_schema_extra=env("MONITOR_ANALYSIS_LEASE_SECONDS"),
        description="How long a replica's claim on its share of the models lasts unrenewed"
        " (renewed every third of it): a replica that dies hands its models over after it",
    )


class OperatorSettings(Group):
    """The reconcile loop."""

    enabled: bool = Field(
        default=True,
        json_schema_extra=env("MONITOR_OPERATOR"),
        description="Run the reconcile loop (offline dryRun when there is no cluster); false"
        " for a pure measuring monitor: no known-good promotion, no decisions",
    )
    reconcile_interval_seconds: float = Field(
        default=30.0, gt=0, description="Pause between operator reconciliations"
    )
    policy_file: Path | None = Field(
        default=None,
        description="Offline only (no cluster): YAML of ModelMonitor specs per model"
        " (`{model: spec}`); a model not in it gets the default spec",
    )


class KubernetesSettings(Group):
    """How the monitor reaches the Kubernetes API, and where it looks."""

    access: Literal["off", "auto", "incluster", "kubeconfig"] = Field(
        default="auto",
        json_schema_extra=env("MONITOR_KUBERNETES"),
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


class LeadershipSettings(Group):
    """Several replicas on one PostgreSQL store (docs/monitor.md#several-replicas): every
    replica serves the API, only the holder of a coordination.k8s.io/v1 Lease runs the
    analysis cycle, the reconcile loop and retention."""

    enabled: bool = Field(
        default=False,
        json_schema_extra=env("MONITOR_LEADER_ELECTION"),
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
    identity: str = Field(
        default_factory=pod_name,
        min_length=1,
        json_schema_extra=env("MONITOR_LEADER_IDENTITY"),
        description="This replica's holderIdentity in the Lease (default: POD_NAME, else the"
        " hostname); must differ between replicas",
    )

    @model_validator(mode="after")
    def _renew_before_the_lease_expires(self) -> LeadershipSettings:
        if self.lease_renew_seconds >= self.lease_duration_seconds:
            raise ValueError(
                "MONITOR_LEASE_RENEW_SECONDS must be below MONITOR_LEASE_DURATION_SECONDS"
                f" ({self.lease_renew_seconds:g} >= {self.lease_duration_seconds:g})"
            )
        return self


class LoggingSettings(Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        json_schema_extra=env("MONITOR_LOG_LEVEL"),
        description="Log level of the monitor's loggers",
    )


class MonitorSettings(BaseModel):
    """Everything the monitor reads from its environment, by group; a group not given is
    read from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: StoreSettings = Field(default_factory=StoreSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    leadership: LeadershipSettings = Field(default_factory=LeadershipSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @model_validator(mode="after")
    def _leader_election_needs_a_shared_store(self) -> MonitorSettings:
        if self.leadership.enabled and self.store.database_url is None:
            raise ValueError(
                "MONITOR_LEADER_ELECTION=true needs MONITOR_DATABASE_URL (PostgreSQL): replicas"
                " cannot share the SQLite file MONITOR_DB_PATH"
            )
        return self

    @property
    def effective_lease_namespace(self) -> str:
        return self.leadership.lease_namespace or self.kubernetes.namespace

    @classmethod
    def environment(cls) -> dict[str, tuple[str, str]]:
        """Every environment variable read -> (group, field)."""
        found: dict[str, tuple[str, str]] = {}
        for group, slot in cls.model_fields.items():
            assert isinstance(slot.annotation, type) and issubclass(slot.annotation, Group)
            for name, field in slot.annotation.model_fields.items():
                found |= {var: (group, name) for var in variables(name, field)}
        return found

    def effective(self) -> dict[str, Any]:
        """The settings as loggable JSON values, secrets masked, each under the name of its
        variable without `MONITOR_` (`db_path`, `predictor_token`, `leader_election`...)."""
        shown: dict[str, Any] = {}
        for group in type(self).model_fields:
            values: Group = getattr(self, group)
            for name, field in type(values).model_fields.items():
                value = getattr(values, name)
                if isinstance(value, SecretStr):
                    value = "**********" if value.get_secret_value() else ""
                elif isinstance(value, Path):
                    value = str(value)
                shown[variables(name, field)[0].removeprefix("MONITOR_").lower()] = value
        return shown


def log_effective(settings: MonitorSettings) -> None:
    logger.info("effective settings: %s", settings.effective())
