"""Kubernetes adapter: the operator's target over a real API server (Events, CR status, patch).

Thin on purpose: the decision is elsewhere (`monitor/decision.py`); this module only reads
and writes API objects, as plain dicts (JSON as the API server sends it, camelCase keys),
with backoff on transient failures and a re-read after any failed patch so a retry never
patches twice. Reading revisions and building the rollout-undo patch are pure and shared
with the offline target: `monitor/rollout.py`; the no-cluster target is `monitor/offline.py`.
Both are re-exported here, where callers have always imported them from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from monitor.kube.rollout import (
    Observation,
    Outcome,
    RevisionView,
    RollbackPlan,
    observe,
    plan_for,
    rollout_undo_patch,
    same_template,
)

LOG = logging.getLogger("modelguard.kube")
GROUP, API_VERSION, PLURAL, KIND = "modelguard.dev", "v1alpha1", "modelmonitors", "ModelMonitor"
COMPONENT = "modelguard-monitor"
T = TypeVar("T")


def event_body(
    monitor: Mapping[str, Any],
    reason: str,
    message: str,
    now: datetime,
    key: str,
    warning: bool = False,
) -> dict[str, Any]:
    """A core/v1 Event about the ModelMonitor; its name is derived from `key` so a retry
    after a crash re-creates the same Event (409, ignored) instead of posting a second one."""
    meta = monitor.get("metadata", {})
    digest = hashlib.sha256(f"{reason}/{key}".encode()).hexdigest()[:16]
    stamp = now.isoformat().replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{digest}", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": f"{GROUP}/monitor",
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class Target(Protocol):
    """What the operator needs from "the cluster" (real API server or offline synthesis)."""

    def list_monitors(self) -> list[dict[str, Any]]: ...
    def observe(self, namespace: str, deployment: str) -> Observation | None: ...
    def rollback(self, plan: RollbackPlan) -> tuple[Outcome, list[dict[str, Any]]]: ...
    def plan_patch(self, plan: RollbackPlan) -> list[dict[str, Any]]: ...
    def event(self, monitor: Mapping[str, Any], body: dict[str, Any]) -> None: ...
    def publish_status(self, monitor: Mapping[str, Any], status: dict[str, Any]) -> None: ...


@dataclass
class Retry:
    """Backoff for transient API failures (429, 5xx, timeouts); 409/422 are re-read, not retried."""

    attempts: int = 5
    base_seconds: float = 0.2
    timeout_seconds: float = 10.0
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> list[float]:
        return [min(self.base_seconds * 2**i, 5.0) for i in range(self.attempts - 1)]


def _status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return int(status) if isinstance(status, int) else None


def _transient(exc: Exception) -> bool:
    status = _status_of(exc)
    if status is not None:
        return status == 429 or status >= 500
    return exc.__class__.__module__.startswith(("urllib3", "socket")) or isinstance(
        exc, TimeoutError | ConnectionError
    )


@dataclass
class KubeTarget:
    """The real thing, over the official `kubernetes` client (configured by the caller)."""

    api_client: Any
    namespace: str | None = None  # None = all namespaces the ServiceAccount can see
    retry: Retry = field(default_factory=Retry)

    def __post_init__(self) -> None:
        from kubernetes import client

        self._apps = client.AppsV1Api(self.api_client)
        self._core = client.CoreV1Api(self.api_client)
        self._custom = client.CustomObjectsApi(self.api_client)

    @property
    def custom_api(self) -> Any:
        """For the ModelMonitor watch (monitor/spec_watch.py)."""
        return self._custom

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call with backoff on transient failures; returns the decoded JSON body."""
        delays = self.retry.delays()
        for attempt in range(self.retry.attempts):
            try:
                response = call(
                    *args,
                    _preload_content=False,
                    _request_timeout=self.retry.timeout_seconds,
                    **kwargs,
                )
                return json.loads(response.data or b"null")
            except Exception as exc:
                if not _transient(exc) or attempt == len(delays):
                    raise
                LOG.warning(
                    "transient API error (%s), retry %d", exc.__class__.__name__, attempt + 1
                )
                self.retry.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def list_monitors(self) -> list[dict[str, Any]]:
        if self.namespace:
            body = self._json(
                self._custom.list_namespaced_custom_object,
                GROUP,
                API_VERSION,
                self.namespace,
                PLURAL,
            )
        else:
            body = self._json(self._custom.list_cluster_custom_object, GROUP, API_VERSION, PLURAL)
        return list(body.get("items") or [])

    def observe(self, namespace: str, deployment: str) -> Observation | None:
        try:
            dep = self._json(self._apps.read_namespaced_deployment, deployment, namespace)
        except Exception as exc:
            if _status_of(exc) == 404:
                return None
            raise
        labels = (dep.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        rs = self._json(
            self._apps.list_namespaced_replica_set, namespace, label_selector=selector or None
        )
        return observe(dep, rs.get("items") or [])

    def plan_patch(self, plan: RollbackPlan) -> list[dict[str, Any]]:
        return plan_for(self.observe(plan.namespace, plan.deployment), plan)

    def rollback(self, plan: RollbackPlan) -> tuple[Outcome, list[dict[str, Any]]]:
        """Patch once; after any failure re-read and judge, so a retry never patches twice."""
        ops: list[dict[str, Any]] = []
        for attempt in range(self.retry.attempts):
            seen = self.observe(plan.namespace, plan.deployment)
            if seen is None:
                return "missing", ops
            target = _find_target(seen, plan)
            if target is None:
                return "missing", ops
            live_template = seen.deployment.get("spec", {}).get("template") or {}
            if same_template(live_template, target.template):
                return ("already" if attempt == 0 else "patched"), ops
            if seen.live_version != plan.from_version:
                return "superseded", ops
            ops = rollout_undo_patch(seen.deployment, target, plan.change_cause)
            try:
                self._json(
                    self._apps.patch_namespaced_deployment,
                    plan.deployment,
                    plan.namespace,
                    ops,
                    _content_type="application/json-patch+json",
                )
                return "patched", ops
            except Exception as exc:
                status = _status_of(exc)
                if status in (409, 422) or _transient(exc):
                    LOG.warning(
                        "rollback patch failed (%s %s); re-reading", status, exc.__class__.__name__
                    )
                    delays = self.retry.delays()
                    self.retry.sleep(delays[min(attempt, len(delays) - 1)] if delays else 0)
                    continue
                raise
        return "failed", ops

    def event(self, monitor: Mapping[str, Any], body: dict[str, Any]) -> None:
        try:
            self._json(self._core.create_namespaced_event, body["metadata"]["namespace"], body)
        except Exception as exc:
            if _status_of(exc) != 409:  # 409: the same Event was already posted
                raise

    def publish_status(self, monitor: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = monitor.get("metadata", {})
        self._json(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            API_VERSION,
            meta["namespace"],
            PLURAL,
            meta["name"],
            {"status": status},
            _content_type="application/merge-patch+json",
        )


def _find_target(seen: Observation, plan: RollbackPlan) -> RevisionView | None:
    """The planned revision if it still carries the planned version, else the newest that does
    (the controller renumbers a ReplicaSet it rolls back to)."""
    chosen = seen.revisions.get(plan.target_revision)
    if chosen is not None and chosen.version == plan.target_version:
        return chosen
    same = [r for r in seen.revisions.values() if r.version == plan.target_version]
    return max(same, key=lambda r: r.number) if same else None
