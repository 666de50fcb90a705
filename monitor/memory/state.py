"""The operator's durable memory: typed records and the only place their keys are formatted.

Why one module: the known-good version, rejections, the incident memory and the pending
rollback intent are what keep a restarted monitor from acting twice. They are written by
the operator and by the service (declaring a known-good, clearing a rejection), read by the
analysis cycle (which version is the yardstick), the store (the versions overview) and the
CLI (`status`); a key or a field spelled two ways
would silently split that memory. The JSON stored under each key is unchanged from the
first release, so an existing database reads back as it was written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from monitor.core.times import iso, parse_time


class StateStore(Protocol):
    """A key -> JSON document store with an atomic read-modify-write (the monitor's store)."""

    def get_state(self, key: str) -> dict[str, Any] | None: ...
    def put_state(self, key: str, value: Mapping[str, Any]) -> None: ...
    def update_state(
        self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class KnownGood:
    """The last version that passed probation (or was declared good), and the Deployment
    revision that carried it. `declared_by` is None for a promotion, else who declared it
    (`spec` for `spec.knownGood`, the API or a CLI user)."""

    version: str
    revision: int | None = None
    since: str | None = None
    declared_by: str | None = None


@dataclass(frozen=True)
class ChunkingStatus:
    """How the analysis cuts one model version into chunks, and what waits for a chunk.

    Written by the analysis cycle, read by the operator (the policy's defaults scale with
    `basis_rows`) and by `monitor status`. `derived_rows` is the smallest chunk whose ROC AUC
    sampling error on the reference is within `max_sampling_error` (None: not derivable,
    `problem` says why).
    """

    mode: str  # "rows" | "period"
    chunk_rows: int | None  # rows per chunk (mode rows)
    period_seconds: int | None  # length of a chunk (mode period)
    derived_rows: int | None
    max_sampling_error: float
    reference_rows: int
    pending_rows: int = 0  # stored rows not yet in an analysed chunk
    rows_needed: int = 0  # rows still missing before the next chunk can be analysed
    problem: str | None = None
    # Mode period: where the periods start (RFC 3339; the declared chunkAnchor, else the
    # model's first event) and the version's first period, chunk 0.
    anchor: str | None = None
    first_period_start: str | None = None

    @property
    def basis_rows(self) -> int | None:
        """The rows one chunk is expected to hold: what minRowsPerChunk and the rules scale
        with (the chunk size by rows; by period, the derived size)."""
        return self.chunk_rows if self.mode == "rows" else self.derived_rows

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChunkingStatus:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class PolicyReport:
    """What is wrong with a ModelMonitor's policy (empty: nothing), as last reported."""

    namespace: str
    name: str
    problems: tuple[tuple[str, str], ...] = ()  # (reason, message)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "problems": [list(p) for p in self.problems],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyReport:
        problems = tuple((str(r), str(m)) for r, m in data.get("problems", []))
        return cls(str(data.get("namespace", "")), str(data.get("name", "")), problems)


@dataclass(frozen=True)
class Rejection:
    reason: str
    time: str | None = None


@dataclass(frozen=True)
class RollbackRecord:
    """One rollback (or dry-run rollback): the same record in Events, status and audit."""

    from_revision: int | None
    to_revision: int | None
    from_version: str | None
    to_version: str | None
    trigger: str | None
    reason: str
    time: str
    dry_run: bool = False

    @property
    def release(self) -> str:
        return f"{self.from_version}@{self.from_revision}"

    def to_json(self) -> dict[str, Any]:
        """As `status.lastRollback` and the audit log spell it (camelCase)."""
        return {
            "from": self.from_revision,
            "to": self.to_revision,
            "fromVersion": self.from_version,
            "toVersion": self.to_version,
            "trigger": self.trigger,
            "reason": self.reason,
            "time": self.time,
            "dryRun": self.dry_run,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RollbackRecord:
        return cls(
            from_revision=data.get("from"),
            to_revision=data.get("to"),
            from_version=data.get("fromVersion"),
            to_version=data.get("toVersion"),
            trigger=data.get("trigger"),
            reason=str(data.get("reason", "")),
            time=str(data.get("time", "")),
            dry_run=bool(data.get("dryRun", False)),
        )


@dataclass(frozen=True)
class Incident:
    """What the operator already did about one ModelMonitor's target."""

    last_rollback_time: datetime | None = None
    handled_release: str | None = None  # "version@revision" already acted on once
    last_rollback: RollbackRecord | None = None
    dry_run_release: str | None = None  # a dry-run rollback already reported for it
    notified: Mapping[str, str] = field(default_factory=dict)  # kind -> "kind:release"

    def with_rollback(self, record: RollbackRecord) -> Incident:
        if record.dry_run:
            return replace(self, last_rollback=record, dry_run_release=record.release)
        return replace(
            self,
            last_rollback=record,
            handled_release=record.release,
            last_rollback_time=parse_time(record.time),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {f"notified_{kind}": key for kind, key in self.notified.items()}
        if self.last_rollback is not None:
            data["last_rollback"] = self.last_rollback.to_json()
        if self.last_rollback_time is not None:
            data["last_rollback_time"] = iso(self.last_rollback_time)
        for name in ("handled_release", "dry_run_release"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Incident:
        data = data or {}
        last = data.get("last_rollback")
        return cls(
            last_rollback_time=parse_time(data.get("last_rollback_time")),
            handled_release=data.get("handled_release"),
            last_rollback=RollbackRecord.from_json(last) if last else None,
            dry_run_release=data.get("dry_run_release"),
            notified={
                k.removeprefix("notified_"): str(v)
                for k, v in data.items()
                if k.startswith("notified_")
            },
        )


@dataclass(frozen=True)
class RollbackPlan:
    """Patch `deployment` back to `target_revision`, which carries `target_version`."""

    namespace: str
    deployment: str
    target_revision: int
    target_version: str
    from_version: str
    change_cause: str


@dataclass(frozen=True)
class PendingRollback:
    """The intent written before a rollback patch and cleared once it is published."""

    plan: RollbackPlan
    record: RollbackRecord
    release: str
    mode: str
    model: str

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": dict(self.plan.__dict__),
            "record": self.record.to_json(),
            "release": self.release,
            "mode": self.mode,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingRollback:
        return cls(
            plan=RollbackPlan(**data["plan"]),
            record=RollbackRecord.from_json(data["record"]),
            release=str(data.get("release", "")),
            mode=str(data.get("mode", "")),
            model=str(data.get("model", "")),
        )


class OperatorState:
    """Typed reads and writes of the operator's memory over a `StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    # -- keys: nowhere else -----------------------------------------------------------------

    @staticmethod
    def _known_good_key(model: str) -> str:
        return f"known_good/{model}"

    @staticmethod
    def _rejected_key(model: str) -> str:
        return f"rejected/{model}"

    @staticmethod
    def _incident_key(namespace: str, name: str) -> str:
        return f"incident/{namespace}/{name}"

    @staticmethod
    def _pending_key(namespace: str, name: str) -> str:
        return f"pending_rollback/{namespace}/{name}"

    @staticmethod
    def _chunking_key(model: str, version: str) -> str:
        return f"chunking/{model}/{version}"

    @staticmethod
    def _policy_key(model: str) -> str:
        return f"policy/{model}"

    # -- known-good -------------------------------------------------------------------------

    def known_good(self, model: str) -> KnownGood | None:
        data = self._store.get_state(self._known_good_key(model))
        if not data or not data.get("version"):
            return None
        return KnownGood(
            str(data["version"]), data.get("revision"), data.get("since"), data.get("declared_by")
        )

    def set_known_good(self, model: str, known_good: KnownGood) -> None:
        data = dict(known_good.__dict__)
        if data["declared_by"] is None:  # a promotion is stored as it always was
            del data["declared_by"]
        self._store.put_state(self._known_good_key(model), data)

    # -- chunking (written by the analysis) ------------------------------------------------

    def chunking(self, model: str, version: str) -> ChunkingStatus | None:
        data = self._store.get_state(self._chunking_key(model, version))
        return ChunkingStatus.from_json(data) if data else None

    def set_chunking(self, model: str, version: str, status: ChunkingStatus) -> bool:
        """Store `status`; False (and nothing written) when it is unchanged."""
        if self.chunking(model, version) == status:
            return False
        self._store.put_state(self._chunking_key(model, version), status.to_json())
        return True

    def period_anchor(self, model: str) -> str | None:
        """The model's first event as the analysis first saw it: where its periods start
        when the ModelMonitor declares no `chunkAnchor` (kept, so numbering never moves)."""
        data = self._store.get_state(f"period-anchor/{model}")
        return str(data["anchor"]) if data and data.get("anchor") else None

    def set_period_anchor(self, model: str, anchor: str) -> None:
        self._store.put_state(f"period-anchor/{model}", {"anchor": anchor})

    # -- policy problems (written by the operator) -----------------------------------------

    def policy_report(self, model: str) -> PolicyReport | None:
        data = self._store.get_state(self._policy_key(model))
        return PolicyReport.from_json(data) if data else None

    def set_policy_report(self, model: str, report: PolicyReport) -> bool:
        """Store `report`; False (and nothing written) when it is unchanged."""
        if self.policy_report(model) == report:
            return False
        self._store.put_state(self._policy_key(model), report.to_json())
        return True

    # -- rejections -------------------------------------------------------------------------

    def rejections(self, model: str) -> dict[str, Rejection]:
        return _rejections_in(self._store.get_state(self._rejected_key(model)))

    def reject(self, model: str, version: str, rejection: Rejection) -> None:
        """Record the first rejection of `version` (a later one keeps the first reason)."""

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            versions = {v: r.__dict__ for v, r in _rejections_in(old).items()}
            versions.setdefault(version, dict(rejection.__dict__))
            return {"versions": versions}

        self._store.update_state(self._rejected_key(model), change)

    def clear_rejection(self, model: str, version: str) -> bool:
        """Forget `version`'s rejection; False when it was not rejected."""
        cleared = False

        def change(old: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal cleared
            if old is None:
                return None
            versions = {v: r.__dict__ for v, r in _rejections_in(old).items()}
            cleared = versions.pop(version, None) is not None
            return {"versions": versions}

        self._store.update_state(self._rejected_key(model), change)
        return cleared

    # -- incident ---------------------------------------------------------------------------

    def incident(self, namespace: str, name: str) -> Incident:
        return Incident.from_json(self._store.get_state(self._incident_key(namespace, name)))

    def put_incident(self, namespace: str, name: str, incident: Incident) -> None:
        self._store.put_state(self._incident_key(namespace, name), incident.to_json())

    # -- pending rollback -------------------------------------------------------------------

    def pending(self, namespace: str, name: str) -> PendingRollback | None:
        data = self._store.get_state(self._pending_key(namespace, name))
        return PendingRollback.from_json(data) if data else None

    def set_pending(self, namespace: str, name: str, pending: PendingRollback) -> None:
        self._store.put_state(self._pending_key(namespace, name), pending.to_json())

    def clear_pending(self, namespace: str, name: str) -> None:
        self._store.put_state(self._pending_key(namespace, name), {})


def _rejections_in(value: Mapping[str, Any] | None) -> dict[str, Rejection]:
    """`{"versions": {version: {...}}}`; lists of names or of dicts from early builds too."""
    if not value:
        return {}
    versions: Iterable[Any] | Mapping[str, Any] = value.get("versions", [])
    if isinstance(versions, Mapping):
        return {str(v): _rejection(info) for v, info in versions.items()}
    found: dict[str, Rejection] = {}
    for item in versions:
        if isinstance(item, Mapping):
            found[str(item.get("version"))] = _rejection(item)
        else:
            found[str(item)] = Rejection("")
    return found


def _rejection(info: Any) -> Rejection:
    if not isinstance(info, Mapping):
        return Rejection("")
    return Rejection(str(info.get("reason", "")), info.get("time"))
