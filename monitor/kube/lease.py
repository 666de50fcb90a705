"""Leader election over a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does.

Several monitor replicas share one PostgreSQL store; only the holder of the Lease runs the
analysis cycle, the reconcile loop and retention (docs/monitor.md#several-replicas). This
module is the API side: one `LeaseElector.try_acquire_or_renew()` reads the Lease, decides
(pure: `decide`) and writes it, with the Lease's `resourceVersion` as the precondition of
every update, so of two replicas that read the same version only one write lands; the other
gets a 409 and is not the leader. Failures arrive as the classes of `errors.py`.

The decision, by the Lease as read:
- absent (404): create it holding it; a 409 on create = another replica created it first;
- held by us: renew (`renewTime` = now);
- free (no holder, e.g. released on shutdown) or expired (`renewTime + leaseDurationSeconds`
  before now): take it over (`leaseTransitions` + 1, `acquireTime` = now);
- held by another and not expired: wait.

Expiry compares the holder's `renewTime` with this replica's clock, so the replicas' clocks
must agree to well within the lease duration (NTP-synchronized nodes do). The caller (the
loop in `monitor/loops/leadership.py`) treats itself as leader only until one renew interval
before its last successful write would expire, so a leader that cannot renew stops acting
before another may take over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kubernetes import client

from monitor.core.times import micro_time, parse_time
from monitor.kube.errors import Conflict, NotFound, translated

LOG = logging.getLogger("modelguard.kube")

Action = Literal["create", "renew", "take", "wait"]


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease's spec and metadata the election reads."""

    holder: str | None
    renew_time: datetime | None
    duration_seconds: float | None
    transitions: int = 0
    acquire_time: datetime | None = None
    resource_version: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> LeaseRecord:
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        duration = spec.get("leaseDurationSeconds")
        return cls(
            holder=spec.get("holderIdentity") or None,
            renew_time=parse_time(spec.get("renewTime")),
            duration_seconds=float(duration) if duration is not None else None,
            transitions=int(spec.get("leaseTransitions") or 0),
            acquire_time=parse_time(spec.get("acquireTime")),
            resource_version=meta.get("resourceVersion"),
        )


def expired(record: LeaseRecord, now: datetime, default_duration: float) -> bool:
    """True when the holder's last renewal is older than the lease duration (a Lease without
    a renewTime has never been renewed: expired)."""
    if record.renew_time is None:
        return True
    duration = record.duration_seconds or default_duration
    return record.renew_time + timedelta(seconds=duration) < now


def decide(
    record: LeaseRecord | None, identity: str, now: datetime, default_duration: float
) -> Action:
    """What to do with the Lease as read (None = it does not exist). Pure."""
    if record is None:
        return "create"
    if record.holder == identity:
        return "renew"
    if record.holder is None or expired(record, now, default_duration):
        return "take"
    return "wait"


def lease_spec(
    action: Action,
    record: LeaseRecord | None,
    identity: str,
    now: datetime,
    duration_seconds: float,
) -> dict[str, Any]:
    """The spec to write for `action` (create / renew / take)."""
    stamp = micro_time(now)
    spec: dict[str, Any] = {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(1, round(duration_seconds)),
        "renewTime": stamp,
    }
    if action == "renew" and record is not None:
        if record.acquire_time is None:
            spec["acquireTime"] = stamp
        return spec
    spec["acquireTime"] = stamp
    spec["leaseTransitions"] = 0 if record is None else record.transitions + 1
    return spec


@dataclass(frozen=True)
class Attempt:
    """The outcome of one try: do we hold the Lease now, who does, and what was done."""

    held: bool
    holder: str | None
    action: Action | Literal["lost-race"]


class LeaseElector:
    """Acquire, renew and release one Lease with the official client (configured by the
    caller). `try_acquire_or_renew` does one read and at most one write; it raises
    `KubeError` subclasses (e.g. `Transient`) when the API cannot be reached."""

    def __init__(
        self,
        api_client: Any,
        *,
        name: str,
        namespace: str,
        identity: str,
        duration_seconds: float,
        timeout_seconds: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._api = client.CoordinationV1Api(api_client)
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration_seconds = duration_seconds
        self.timeout_seconds = timeout_seconds
        self._clock = clock or (lambda: datetime.now(UTC))

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        with translated():
            response = method(
                *args, _preload_content=False, _request_timeout=self.timeout_seconds, **kwargs
            )
        body = json.loads(response.data or b"null")
        return body if isinstance(body, dict) else {}

    def read(self) -> LeaseRecord | None:
        """The Lease as it is now; None when it does not exist."""
        try:
            body = self._call(self._api.read_namespaced_lease, self.name, self.namespace)
        except NotFound:
            return None
        return LeaseRecord.from_body(body)

    def try_acquire_or_renew(self) -> Attempt:
        record = self.read()
        now = self._clock()
        action = decide(record, self.identity, now, self.duration_seconds)
        if action == "wait":
            assert record is not None
            return Attempt(False, record.holder, action)
        spec = lease_spec(action, record, self.identity, now, self.duration_seconds)
        try:
            if record is None:
                self._create(spec)
            else:
                self._update(record, spec)
        except (Conflict, NotFound):
            # 409: another replica wrote (or created) the Lease since our read; 404: it was
            # deleted since. Either way not ours this round; the next try reads afresh.
            return Attempt(False, None, "lost-race")
        return Attempt(True, self.identity, action)

    def _create(self, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        self._call(self._api.create_namespaced_lease, self.namespace, body)

    def _update(self, record: LeaseRecord, spec: dict[str, Any]) -> None:
        """A merge patch that carries the resourceVersion read: the API server applies it
        only if the Lease is still at that version (else 409 Conflict)."""
        patch: dict[str, Any] = {"spec": spec}
        if record.resource_version is not None:
            patch["metadata"] = {"resourceVersion": record.resource_version}
        else:  # a real API server always sends one; without it there is no precondition
            LOG.warning("Lease %s/%s has no resourceVersion", self.namespace, self.name)
        self._call(
            self._api.patch_namespaced_lease,
            self.name,
            self.namespace,
            patch,
            _content_type="application/merge-patch+json",
        )

    def release(self) -> bool:
        """Give the Lease up if we hold it (clean shutdown): no holder, so another replica
        takes it at its next try instead of after the lease duration. True if released."""
        record = self.read()
        if record is None or record.holder != self.identity:
            return False
        patch: dict[str, Any] = {
            "spec": {
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(self._clock()),
            }
        }
        if record.resource_version is not None:
            patch["metadata"] = {"resourceVersion": record.resource_version}
        try:
            self._call(
                self._api.patch_namespaced_lease,
                self.name,
                self.namespace,
                patch,
                _content_type="application/merge-patch+json",
            )
        except (Conflict, NotFound):
            return False
        return True
