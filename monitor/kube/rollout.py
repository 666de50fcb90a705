"""Deployment revisions and the rollout-undo patch: pure functions over API objects (dicts).

Why a module of its own: both targets, the real cluster (`target.py`) and the offline
synthesis (`offline.py`), read a Deployment and its ReplicaSets the same way and
compute the same patch. The rollback reproduces `kubectl rollout undo --to-revision`: copy
the target ReplicaSet's pod template without its `pod-template-hash` label and patch the
Deployment with it, guarded by JSON-patch `test` ops (resourceVersion and the current
model-version annotation) so that a concurrent change is never overwritten. No I/O here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.memory.state import RollbackPlan
from monitor.operator.ports import Observation, RevisionView

VERSION_ANNOTATION = "modelguard.dev/model-version"
MODEL_ANNOTATION = "modelguard.dev/model-name"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"


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


def plan_for(seen: Observation | None, plan: RollbackPlan) -> list[dict[str, Any]]:
    """The patch for `plan` against what was just observed; [] when the target is gone."""
    if seen is None or plan.target_revision not in seen.revisions:
        return []
    return rollout_undo_patch(
        seen.deployment, seen.revisions[plan.target_revision], plan.change_cause
    )
