"""The predictor's one settings object (environment prefix `PREDICTOR_`).

Read once at import time of the service: BentoML builds the request model, the worker count
and the OpenAPI document from it before any worker starts. Every field, the contract's and
the predictor-local knobs below them alike, is listed with its default in docs/contracts.md
section 2. The monitor token is a `SecretStr` so that logging the effective settings can
never print it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("modelguard.predictor")


class PredictorSettings(BaseSettings):
    """Everything the predictor reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="PREDICTOR_", extra="ignore", frozen=True)

    # --- contract fields (docs/contracts.md section 2) ---
    model_tag: str = Field(
        default="rain_forecast:latest", description="Model in the store to serve"
    )
    expected_version: str | None = Field(
        default=None, description="Version the pod template declares; /readyz is 503 on a mismatch"
    )
    monitor_url: AnyHttpUrl | None = Field(
        default=None, description="Base URL of the monitor; unset = no shipping, no registration"
    )
    monitor_token: SecretStr | None = Field(
        default=None,
        description="The monitor's predictor token: sent on registration and record POSTs",
    )
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0, description="Share of records logged")
    spool_dir: Path = Field(default=Path("/tmp/modelguard-spool"), description="On-disk spool")  # noqa: S108
    spool_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Spool bound (all workers); oldest dropped past it",
    )
    max_batch: int = Field(default=10_000, ge=1, description="Most records per /predict request")

    # --- predictor-local knobs ---
    batch_max_records: int = Field(
        default=100_000,
        ge=1,
        description="Most records per /predict_batch request (the batch mode)",
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=4096,
        description="Largest request body (bytes) of either route, checked while it streams in"
        " (larger: 413); a route's limit is also at most 4 KiB per record it takes. Keep it"
        " well below the container's memory limit (the chart checks both)",
    )
    workers: int = Field(default=1, ge=1, le=64, description="BentoML worker processes")
    reuse_port: bool = Field(
        default=True,
        description="One SO_REUSEPORT listening socket per worker (false: BentoML's one shared"
        " socket, where under keep-alive load one worker can hold every connection)",
    )
    fast_path: bool = Field(
        default=True,
        description="Answer POST /predict and /predict_batch below BentoML's metrics, tracing"
        " and timeout middleware but without its per-API layer (same contract; false: routed)",
    )
    predict_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="XGBoost threads per worker (1 is best for small requests)",
    )
    ship_batch_records: int = Field(
        default=1000, ge=1, description="Records per POST to the monitor"
    )
    ship_flush_seconds: float = Field(default=0.5, gt=0, description="Longest wait before a POST")
    ship_queue_max_records: int = Field(
        default=200_000, ge=1, description="In-memory buffer bound per worker (records)"
    )
    ship_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of one POST")
    shutdown_flush_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Deadline for sending the buffer at shutdown (rest is spooled)",
    )

    @property
    def monitor_base(self) -> str | None:
        return str(self.monitor_url).rstrip("/") if self.monitor_url else None

    def log_effective(self) -> None:
        """One line, every field; a SecretStr prints as '**********'."""
        shown = " ".join(f"PREDICTOR_{k.upper()}={v}" for k, v in self.model_dump().items())
        logger.info("effective settings: %s", shown)
