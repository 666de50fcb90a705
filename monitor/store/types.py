"""The store's plain types and value conversions (no database access), shared by both
backends and by the callers of the `Store` protocol (monitor/store/protocol.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from contract.registration import Registration


class RegistrationConflictError(Exception):
    """The same model version was registered before with different content (HTTP 409)."""


class StoreUnavailableError(Exception):
    """The database cannot be reached now (HTTP 503 with Retry-After): raised within about a
    second instead of hanging, so callers answer fast and retry later."""


class UnknownVersionError(KeyError):
    """No such model version (or artifact) in the store (HTTP 404). A `KeyError`: callers
    that look a version up may treat it as any missing key."""


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    registered_at: str | None  # None: records arrived, the registration has not (yet)
    learner: str | None
    release: str | None
    state: str  # registered | unregistered | known-good | rejected
    records: int


@dataclass
class IngestResult:
    """What one `append_records` call changed, for the response and the metrics."""

    accepted: int = 0
    duplicates: int = 0
    accepted_by_version: dict[tuple[str, str], int] = field(default_factory=dict)
    labels_joined_by_model: dict[str, int] = field(default_factory=dict)


@dataclass
class Expired:
    """What one `Store.expire` call deleted."""

    records: int = 0
    labels: int = 0  # labels of the expired records
    orphan_labels: int = 0  # labels whose record never arrived
    batches: int = 0


@dataclass
class LabelResult:
    accepted: int = 0
    joined_by_model: dict[str, int] = field(default_factory=dict)


def to_epoch_us(value: str | datetime) -> int:
    """ISO-8601 text or datetime -> integer microseconds since the epoch (naive = UTC)."""
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def features_json(features: Mapping[str, Any]) -> str:
    """Compact JSON of one record's features (pydantic-core's encoder: ~5x json.dumps)."""
    for value in features.values():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("features must be finite numbers, strings or null")
    return to_json(features).decode()


def registration_dict(reg: Registration | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(reg, BaseModel):
        return dict(reg.model_dump(by_alias=True, mode="json"))
    return dict(reg)
