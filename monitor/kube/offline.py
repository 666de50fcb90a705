"""No cluster (`MONITOR_KUBERNETES=off`, `settings.kubernetes.access`): the operator's target
synthesized from the store.

Why a module of its own: the monitor must show what it would do before it is trusted with a
cluster. `OfflineTarget` offers the same surface as `target.KubeTarget`: a Deployment
synthesized from the registered versions (revision n = the n-th registered version, live =
the version receiving records), patches computed and returned, never sent; `offline_target`
builds it, with one dryRun ModelMonitor per model in the store. Its spec is the default one
(`MONITOR_CHUNK_SIZE` rows), or the model's entry of the policy file (`MONITOR_POLICY_FILE`:
YAML `{model: ModelMonitor spec}`), read on every pass so an edit applies without a restart.
The spec is the same schema as a cluster's ModelMonitor, parsed by the same code.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.kube.events import event_body
from monitor.kube.rollout import (
    HASH_LABEL,
    MODEL_ANNOTATION,
    REVISION_ANNOTATION,
    VERSION_ANNOTATION,
    clean_template,
    observe,
    plan_for,
)
from monitor.memory.state import RollbackPlan
from monitor.operator.ports import EventNote, Observation, Outcome
from monitor.operator.resource import ModelMonitor
from monitor.store.protocol import Store

LOG = logging.getLogger("modelguard.kube")


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
    # Deployment -> model, as of the last `list_monitors` (once per pass: issue 24, asking
    # the store for every model once per model made a pass quadratic in the models).
    _targets: dict[str, str] = field(default_factory=dict)

    def list_monitors(self) -> list[dict[str, Any]]:
        monitors = copy.deepcopy(self.monitors())
        self._targets = _targets_of(monitors)
        for monitor in monitors:  # as an API server would: the last status written
            status = self.statuses.get(ModelMonitor.from_body(monitor).name)
            if status is not None:
                monitor["status"] = copy.deepcopy(status)
        return monitors

    def _model_of(self, deployment: str) -> str:
        if deployment not in self._targets:  # not listed yet (a model registered since)
            self._targets = _targets_of(self.monitors())
        return self._targets[deployment]

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
        return plan_for(self.observe(plan.namespace, plan.deployment), plan)

    def rollback(self, plan: RollbackPlan) -> tuple[Outcome, list[dict[str, Any]]]:
        raise RuntimeError("offline mode never patches: run the ModelMonitor in dryRun")

    def event(self, monitor: ModelMonitor, note: EventNote) -> None:
        LOG.info("event %s: %s", note.reason, note.message)
        self.events.append(event_body(monitor, note))

    def publish_status(self, monitor: ModelMonitor, status: dict[str, Any]) -> None:
        self.statuses[monitor.name] = status


def _targets_of(monitors: list[dict[str, Any]]) -> dict[str, str]:
    """Deployment name -> the model its ModelMonitor declares."""
    targets: dict[str, str] = {}
    for body in monitors:
        monitor = ModelMonitor.from_body(body)
        if monitor.declared_model and monitor.target_name:
            targets.setdefault(monitor.target_name, monitor.declared_model)
    return targets


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


def offline_target(
    store: Store,
    namespace: str = "default",
    chunk_size: int = 500,
    policy_file: Path | None = None,
) -> OfflineTarget:
    """No cluster (kubernetes=off): one dryRun ModelMonitor per model in the store; revision
    n = the n-th registered version; live = the version whose records were analysed last."""

    def versions(model: str) -> list[str]:
        return [v.version for v in store.versions(model) if v.registered_at]

    def live(model: str) -> str | None:
        chunks = store.chunks(model)
        if chunks:
            return str(max(chunks, key=lambda c: c.last_seq).version)
        with_records = [v.version for v in store.versions(model) if v.records]
        return with_records[-1] if with_records else None

    def monitors() -> list[dict[str, Any]]:
        specs = read_policy_file(policy_file) if policy_file is not None else {}
        return [
            _offline_monitor(model, namespace, chunk_size, specs.get(model))
            for model in store.models()
        ]

    return OfflineTarget(monitors=monitors, versions=versions, live_version=live)


def read_policy_file(path: Path) -> dict[str, dict[str, Any]]:
    """`{model: spec}` from a YAML (or JSON) file; ValueError naming the file and the entry."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the policy file ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of model name -> ModelMonitor spec")
    return {str(model): dict(spec) for model, spec in data.items()}


def _offline_monitor(
    model: str, namespace: str, chunk_size: int, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The model's ModelMonitor; offline never patches, so `mode: auto` runs as dryRun."""
    name = model.replace("_", "-")
    merged: dict[str, Any] = {"mode": "dryRun", **(spec or {"chunkSize": chunk_size})}
    if merged["mode"] == "auto":
        merged["mode"] = "dryRun"
    merged["model"] = model
    merged["targetRef"] = {"kind": "Deployment", "name": f"{name}-predictor"}
    return {
        "apiVersion": "modelguard.dev/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": merged,
    }
