"""Kubernetes adapter: revisions -> model versions, the rollout-undo patch, Events, CR status.

Thin on purpose: the decision is elsewhere (`monitor/decision.py`); this module only reads
and writes API objects, as plain dicts (JSON as the API server sends it, camelCase keys).
The rollback reproduces `kubectl rollout undo --to-revision`: copy the target ReplicaSet's
pod template without its `pod-template-hash` label and patch the Deployment with it, guarded
by JSON-patch `test` ops (resourceVersion and the current model-version annotation) so that a
concurrent change is never overwritten. `OfflineTarget` offers the same surface without a
cluster (settings `kubernetes=off`): a Deployment synthesized from the registered versions,
patches computed and returned, never sent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

LOG = logging.getLogger("modelguard.kube")
VERSION_ANNOTATION = "modelguard.dev/model-version"
MODEL_ANNOTATION = "modelguard.dev/model-name"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
GROUP, API_VERSION, PLURAL, KIND = "modelguard.dev", "v1alpha1", "modelmonitors", "ModelMonitor"
COMPONENT = "modelguard-monitor"
Outcome = Literal["patched", "already", "superseded", "missing", "failed"]
T = TypeVar("T")


@dataclass(frozen=True)
class RevisionView:
    """One ReplicaSet owned by the Deployment: its revision, pod template and model version."""

    number: int
    name: str
    version: str | None
    template: Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    deployment: Mapping[str, Any]
    revisions: Mapping[int, RevisionView]
    live_version: str | None
    live_revision: int | None

    @property
    def history(self) -> dict[int, str | None]:
        return {n: r.version for n, r in self.revisions.items()}


@dataclass(frozen=True)
class RollbackPlan:
    namespace: str
    deployment: str
    target_revision: int
    target_version: str
    from_version: str
    change_cause: str


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def template_version(template: Mapping[str, Any] | None) -> str | None:
    annotations = ((template or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(VERSION_ANNOTATION)
    return str(value) if value else None


def clean_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """The ReplicaSet's template as the Deployment would carry it: no pod-template-hash."""
    result = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return result


def same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return json.dumps(clean_template(a), sort_keys=True) == json.dumps(
        clean_template(b), sort_keys=True
    )


def revisions_of(
    deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]]
) -> dict[int, RevisionView]:
    """ReplicaSets owned by this Deployment (ownerReferences uid), keyed by revision number."""
    uid = deployment.get("metadata", {}).get("uid")
    found: dict[int, RevisionView] = {}
    for rs in replicasets:
        meta = rs.get("metadata", {})
        owners = meta.get("ownerReferences") or []
        if not any(o.get("uid") == uid and o.get("kind") == "Deployment" for o in owners):
            continue
        raw = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
        try:
            number = int(str(raw))
        except ValueError:
            continue  # not a revision the controller stamped: never a rollback target
        template = rs.get("spec", {}).get("template") or {}
        found[number] = RevisionView(
            number, meta.get("name", ""), template_version(template), template
        )
    return found


def observe(deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]]) -> Observation:
    """What is live: the template's declared version, and the revision that carries it."""
    revisions = revisions_of(deployment, replicasets)
    template = deployment.get("spec", {}).get("template") or {}
    live_version = template_version(template)
    live_revision: int | None = None
    raw = (deployment.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    if (
        raw is not None
        and str(raw).isdigit()
        and int(raw) in revisions
        and same_template(revisions[int(raw)].template, template)
    ):
        live_revision = int(raw)
    else:  # the controller has not caught up yet: find the ReplicaSet with this template
        matching = [n for n, r in revisions.items() if same_template(r.template, template)]
        live_revision = max(matching) if matching else None
    return Observation(deployment, revisions, live_version, live_revision)


def rollout_undo_patch(
    deployment: Mapping[str, Any], target: RevisionView, change_cause: str
) -> list[dict[str, Any]]:
    """The JSON patch `kubectl rollout undo --to-revision` amounts to, with preconditions."""
    meta = deployment.get("metadata", {})
    ops: list[dict[str, Any]] = []
    if meta.get("resourceVersion"):
        ops.append(
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}
        )
    current = template_version(deployment.get("spec", {}).get("template"))
    if current is not None:
        ops.append(
            {
                "op": "test",
                "value": current,
                "path": f"/spec/template/metadata/annotations/{_escape(VERSION_ANNOTATION)}",
            }
        )
    ops.append(
        {"op": "replace", "path": "/spec/template", "value": clean_template(target.template)}
    )
    if meta.get("annotations"):
        ops.append(
            {
                "op": "add",
                "path": f"/metadata/annotations/{_escape(CHANGE_CAUSE)}",
                "value": change_cause,
            }
        )
    else:
        ops.append(
            {"op": "add", "path": "/metadata/annotations", "value": {CHANGE_CAUSE: change_cause}}
        )
    return ops


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
        seen = self.observe(plan.namespace, plan.deployment)
        if seen is None or plan.target_revision not in seen.revisions:
            return []
        return rollout_undo_patch(
            seen.deployment, seen.revisions[plan.target_revision], plan.change_cause
        )

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


@dataclass
class OfflineTarget:
    """No cluster: revision n is the n-th registered version (registration order), the live
    version is the one receiving records; patches are computed against a synthesized
    Deployment and returned (the operator logs and audits them in dryRun), never sent."""

    monitors: Callable[[], list[dict[str, Any]]]  # asked every pass: models register later
    versions: Callable[[str], list[str]]  # model -> versions in registration order
    live_version: Callable[[str], str | None]
    events: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)

    def list_monitors(self) -> list[dict[str, Any]]:
        monitors = copy.deepcopy(self.monitors())
        for monitor in monitors:  # as an API server would: the last status written
            status = self.statuses.get(monitor["metadata"]["name"])
            if status is not None:
                monitor["status"] = copy.deepcopy(status)
        return monitors

    def _model_of(self, deployment: str) -> str:
        for monitor in self.monitors():
            if monitor["spec"]["targetRef"]["name"] == deployment:
                return str(monitor["spec"]["model"])
        raise KeyError(deployment)

    def observe(self, namespace: str, deployment: str) -> Observation | None:
        model = self._model_of(deployment)
        versions = self.versions(model)
        live = self.live_version(model)
        uid = f"offline-{model}"
        replicasets = [
            synthesized_replicaset(namespace, deployment, uid, model, v, n)
            for n, v in enumerate(versions, start=1)
        ]
        live_n = versions.index(live) + 1 if live in versions else None
        template = (
            clean_template(replicasets[live_n - 1]["spec"]["template"])
            if live_n
            else {"metadata": {"annotations": {}}}
        )
        dep = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": deployment,
                "namespace": namespace,
                "uid": uid,
                "resourceVersion": str(live_n or 0),
                "annotations": {REVISION_ANNOTATION: str(live_n or 0)},
            },
            "spec": {"template": template},
        }
        return observe(dep, replicasets)

    def plan_patch(self, plan: RollbackPlan) -> list[dict[str, Any]]:
        seen = self.observe(plan.namespace, plan.deployment)
        if seen is None or plan.target_revision not in seen.revisions:
            return []
        return rollout_undo_patch(
            seen.deployment, seen.revisions[plan.target_revision], plan.change_cause
        )

    def rollback(self, plan: RollbackPlan) -> tuple[Outcome, list[dict[str, Any]]]:
        raise RuntimeError("offline mode never patches: run the ModelMonitor in dryRun")

    def event(self, monitor: Mapping[str, Any], body: dict[str, Any]) -> None:
        LOG.info("event %s: %s", body["reason"], body["message"])
        self.events.append(body)

    def publish_status(self, monitor: Mapping[str, Any], status: dict[str, Any]) -> None:
        self.statuses[monitor["metadata"]["name"]] = status


def synthesized_replicaset(
    namespace: str, deployment: str, owner_uid: str, model: str, version: str, revision: int
) -> dict[str, Any]:
    """A ReplicaSet as the Deployment controller would have created it for this version."""
    digest = hashlib.sha256(version.encode()).hexdigest()[:10]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deployment}-{digest}",
            "namespace": namespace,
            "uid": f"{owner_uid}-rs-{digest}",
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment,
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": deployment, HASH_LABEL: digest},
                    "annotations": {VERSION_ANNOTATION: version, MODEL_ANNOTATION: model},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "predictor",
                            "image": "modelguard-predictor",
                            "env": [{"name": "PREDICTOR_EXPECTED_VERSION", "value": version}],
                        }
                    ]
                },
            }
        },
    }
