"""The operator's `Target` over a real API server: ModelMonitors, Deployments, Events, status.

Thin on purpose: the decision is in `monitor/decision/`; this module only reads and writes
API objects, as plain dicts (JSON as the API server sends it, camelCase keys), with backoff
on transient failures and a re-read after any failed patch so a retry never patches twice.
Reading revisions and building the rollout-undo patch are pure and shared with the offline
target (`rollout.py`); failures arrive as the classes of `errors.py`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from monitor.kube.errors import Conflict, Invalid, NotFound, Transient, translated
from monitor.kube.events import API_VERSION, GROUP, PLURAL, event_body
from monitor.kube.rollout import observe, plan_for, rollout_undo_patch, same_template
from monitor.memory.state import RollbackPlan
from monitor.operator.ports import EventNote, Observation, Outcome, RevisionView
from monitor.operator.resource import ModelMonitor

LOG = logging.getLogger("modelguard.kube")


@dataclass
class Retry:
    """Backoff for `Transient` failures (429, 5xx, timeouts); 409/422 are re-read, not retried."""

    attempts: int = 5
    base_seconds: float = 0.2
    timeout_seconds: float = 10.0
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> list[float]:
        return [min(self.base_seconds * 2**i, 5.0) for i in range(self.attempts - 1)]


@dataclass
class KubeTarget:
    """The real thing, over the official `kubernetes` client (configured by the caller)."""

    api_client: Any
    namespace: str | None = None  # None = all namespaces the ServiceAccount can see
    retry: Retry = field(default_factory=Retry)

    def __post_init__(self) -> None:
        self._apps = client.AppsV1Api(self.api_client)
        self._core = client.CoreV1Api(self.api_client)
        self._custom = client.CustomObjectsApi(self.api_client)

    @property
    def custom_api(self) -> Any:
        """For the ModelMonitor watch (`watch.py`)."""
        return self._custom

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call with backoff on transient failures; returns the decoded JSON body."""
        delays = self.retry.delays()
        for attempt in range(self.retry.attempts):
            try:
                with translated():
                    response = call(
                        *args,
                        _preload_content=False,
                        _request_timeout=self.retry.timeout_seconds,
                        **kwargs,
                    )
                return json.loads(response.data or b"null")
            except Transient as exc:
                if attempt == len(delays):
                    raise
                LOG.warning("transient API error (%s), retry %d", exc, attempt + 1)
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
        except NotFound:
            return None
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
            except (Conflict, Invalid, Transient) as exc:
                LOG.warning("rollback patch failed (%s); re-reading", exc)
                delays = self.retry.delays()
                self.retry.sleep(delays[min(attempt, len(delays) - 1)] if delays else 0)
                continue
        return "failed", ops

    def event(self, monitor: ModelMonitor, note: EventNote) -> None:
        body = event_body(monitor, note)
        with contextlib.suppress(Conflict):  # 409: this Event (named by its key) was posted
            self._json(self._core.create_namespaced_event, monitor.namespace, body)

    def publish_status(self, monitor: ModelMonitor, status: dict[str, Any]) -> None:
        self._json(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            API_VERSION,
            monitor.namespace,
            PLURAL,
            monitor.name,
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
