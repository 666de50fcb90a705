"""Test support for the operator: ChunkEvidence factories and a Kubernetes API emulator.

The emulator is kmock's `KubernetesEmulator` served over real HTTP on loopback, run in a
background thread with its own event loop so that the synchronous official `kubernetes`
client (what the monitor uses) can talk to it from ordinary tests. kmock has gaps
(docs/design.md): no resourceVersion, no 409 on stale writes, no PUT, label selectors ignored,
no Deployment controller. This module closes the ones the operator and the leader election
depend on: `resourceVersion` is set on every create and bumped on every write, a failed
JSON-patch `test` op answers 422 and a merge patch carrying a stale
`metadata.resourceVersion` answers 409, like a real API server; `simulate_controller` does
what the Deployment controller would after a rollout (bump the matching ReplicaSet's
revision).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock

from monitor.core.evidence import ChunkEvidence, Estimate, FeatureDrift
from monitor.kube.rollout import (
    HASH_LABEL,
    MODEL_ANNOTATION,
    REVISION_ANNOTATION,
    VERSION_ANNOTATION,
    clean_template,
    same_template,
)

MODEL = "rain_forecast"


def chunk(
    version: str,
    index: int,
    *,
    rows: int = 500,
    estimated: float | None = 0.85,
    known_good_estimated: float | None = 0.85,
    known_good_version: str | None = "good-1",
    same_learner: bool | None = True,
    parity: float | None = 0.0,
    rank: float | None = 0.95,
    rank_floor: float | None = 0.80,
    realized: float | None = None,
    known_good_realized: float | None = None,
    labelled_rows: int = 0,
    drifted: tuple[str, ...] = (),
    model: str = MODEL,
) -> ChunkEvidence:
    """One chunk of evidence with healthy defaults; override the field a scenario is about."""
    return ChunkEvidence(
        model=model,
        version=version,
        chunk_index=index,
        rows=rows,
        first_seq=index * rows + 1,
        last_seq=(index + 1) * rows,
        start_time=f"2013-07-{index + 1:02d}T00:00:00+00:00",
        end_time=f"2013-07-{index + 1:02d}T23:00:00+00:00",
        estimated={}
        if estimated is None
        else {"roc_auc": Estimate(estimated, estimated - 0.05, estimated + 0.05)},
        realized={} if realized is None else {"roc_auc": realized},
        labelled_rows=labelled_rows,
        drift=[FeatureDrift(f, "jensen_shannon", 0.3, 0.1, True) for f in drifted],
        parity_violation_ratio=parity,
        known_good_version=known_good_version,
        same_learner=same_learner,
        rank_correlation=rank,
        rank_correlation_floor=rank_floor,
        known_good_estimated={}
        if known_good_estimated is None
        else {"roc_auc": Estimate(known_good_estimated)},
        known_good_realized={} if known_good_realized is None else {"roc_auc": known_good_realized},
    )


# --- Kubernetes API emulator over real HTTP (kmock) ------------------------------------------

DEPLOYMENTS = "apps/v1/deployments"
REPLICASETS = "apps/v1/replicasets"
EVENTS = "v1/events"
MODELMONITORS = "modelguard.dev/v1alpha1/modelmonitors"


@dataclass
class Fault:
    """One injected failure on the next matching write: an error status, or a reply delayed
    past the client's timeout (`delay_seconds`) after the write was applied (a lost reply)."""

    plural: str
    status: int | None = None
    delay_seconds: float = 0.0


def _status_body(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        },
        status=code,
    )


@attrs.define(kw_only=True)
class ModelguardEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus what a real API server does and the operator relies on:
    JSON patches with `test` ops answered 422 on failure (kmock answers 500), a
    resourceVersion bumped on every write (kmock keeps none), and injectable faults."""

    faults: list[Fault] = attrs.field(factory=list)
    _versions: Any = attrs.field(factory=lambda: itertools.count(100))

    def bump(self, key: tuple[str, str, str]) -> None:
        obj = self.objects[key]
        obj.patch({"metadata": {"resourceVersion": str(next(self._versions))}})

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.action == kmock.action.CREATE:
            response = await super()._handle(request)
            meta = request.data.get("metadata") or {}
            res = request.resource
            key = (
                f"{res.group}/{res.version}/{res.plural}".lstrip("/"),
                str(request.namespace or meta.get("namespace")),
                str(meta.get("name")),
            )
            if response.status < 300:
                with contextlib.suppress(KeyError):
                    self.bump(key)  # a created object has a resourceVersion too
            return response
        if request.resource is None or request.action != kmock.action.UPDATE or not request.name:
            return await super()._handle(request)
        plural = request.resource.plural
        fault = next((f for f in self.faults if f.plural == plural), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.status is not None:  # refused: nothing applied
                return _status_body(fault.status, "Injected", f"injected {fault.status}")
        key = (
            f"{request.resource.group}/{request.resource.version}/{plural}".lstrip("/"),
            request.namespace,
            request.name,
        )
        if isinstance(request.data, list):  # JSON patch: applied here, atomically
            try:
                current = self.objects[key].raw
            except KeyError:
                return _status_body(404, "NotFound", f"{request.name} not found")
            try:
                updated = jsonpatch.apply_patch(copy.deepcopy(current), request.data)
            except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
                return _status_body(422, "Invalid", f"the patch precondition failed: {exc}")
            updated.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
            self.objects[key].create(updated)
            if fault is not None and fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            return aiohttp.web.json_response(updated)
        meta = request.data.get("metadata") if isinstance(request.data, dict) else None
        expected = (meta or {}).get("resourceVersion")
        if expected is not None:
            # A patch carrying a resourceVersion is conditional on a real API server: 409 when
            # the object moved on (kmock checks none). Checked and applied without an await.
            try:
                obj = self.objects[key]
            except KeyError:
                return _status_body(404, "NotFound", f"{request.name} not found")
            if obj.deleted:
                return _status_body(404, "NotFound", f"{request.name} not found")
            if (obj.raw.get("metadata") or {}).get("resourceVersion") != expected:
                return _status_body(409, "Conflict", "the object has been modified")
            obj.patch(request.data)
            self.bump(key)
            return aiohttp.web.json_response(obj.raw)
        response = await super()._handle(request)
        if request.subresource is None:
            self.bump(key)  # status writes leave the object's spec version alone here
        if fault is not None and fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        return response


@dataclass
class KubeEmulator:
    """The emulator running on its own event loop in a thread, for synchronous tests."""

    emulator: ModelguardEmulator
    url: str
    loop: asyncio.AbstractEventLoop
    uids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def api_client(self) -> Any:
        from kubernetes import client

        config = client.Configuration(host=self.url)
        return client.ApiClient(config)

    @property
    def objects(self) -> Any:
        return self.emulator.objects

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.emulator.objects[plural, namespace, name].raw)

    def put(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        body.setdefault("metadata", {}).update({"name": name, "namespace": namespace})
        body["metadata"].setdefault("uid", f"uid-{next(self.uids)}")
        body["metadata"]["resourceVersion"] = str(next(self.emulator._versions))
        try:  # a new version in the object's history, as a real write would make
            self.emulator.objects[plural, namespace, name].create(body)
        except KeyError:
            self.emulator.objects[plural, namespace, name] = body

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        found = []
        for (res, ns, _), obj in list(self.emulator.objects.items()):
            path = f"{res.group}/{res.version}/{res.plural}".lstrip("/")
            if path == plural and (namespace is None or ns == namespace) and not obj.deleted:
                found.append(copy.deepcopy(obj.raw))
        return found

    def patches(self, plural: str = "deployments") -> int:
        """How many PATCH requests reached the emulator for this resource (its own log)."""
        return sum(
            1
            for r in self.emulator._requests
            if r.method == kmock.method.PATCH
            and r.resource is not None
            and r.resource.plural == plural
            and r.subresource is None
        )

    def history(self, namespace: str, name: str) -> list[str | None]:
        """The Deployment's model version after every write, oldest first."""
        obj = self.emulator.objects[DEPLOYMENTS, namespace, name]
        return [
            (
                (v.raw.get("spec", {}).get("template", {}).get("metadata") or {}).get("annotations")
                or {}
            ).get(VERSION_ANNOTATION)
            for v in obj.history
            if v is not None
        ]


@contextmanager
def kube_emulator() -> Iterator[KubeEmulator]:
    """Start the emulator on a free loopback port; always stopped, even if the test fails."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kmock", daemon=True)
    thread.start()
    emulator = ModelguardEmulator()
    server = kmock.Server(emulator)

    async def start() -> str:
        await emulator.__aenter__()
        await server.__aenter__()
        return str(server.url).rstrip("/")

    async def stop() -> None:
        await server.__aexit__(None, None, None)
        await emulator.__aexit__(None, None, None)

    try:
        url = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
        yield KubeEmulator(emulator, url, loop)
    finally:
        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()


def pod_template(app: str, model: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app.kubernetes.io/name": app},
            "annotations": {VERSION_ANNOTATION: version, MODEL_ANNOTATION: model},
        },
        "spec": {
            "containers": [
                {
                    "name": "predictor",
                    "image": "modelguard-predictor:1",
                    "env": [{"name": "PREDICTOR_EXPECTED_VERSION", "value": version}],
                }
            ]
        },
    }


def create_deployment(
    kube: KubeEmulator, namespace: str, name: str, versions: list[str], model: str = MODEL
) -> str:
    """A Deployment that went through `versions` (one rollout each), with the ReplicaSets
    the Deployment controller would have left behind (kmock has no controller)."""
    kube.put(
        DEPLOYMENTS,
        namespace,
        name,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"annotations": {}, "generation": 1},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": pod_template(name, model, versions[0]),
            },
        },
    )
    simulate_controller(kube, namespace, name)
    for version in versions[1:]:
        deploy(kube, namespace, name, version, model)
    return str(kube.get(DEPLOYMENTS, namespace, name)["metadata"]["uid"])


def deploy(kube: KubeEmulator, namespace: str, name: str, version: str, model: str = MODEL) -> None:
    """What `helm upgrade` with a new model version does, followed by the controller."""
    dep = kube.get(DEPLOYMENTS, namespace, name)
    dep["spec"]["template"] = pod_template(name, model, version)
    kube.put(DEPLOYMENTS, namespace, name, dep)
    simulate_controller(kube, namespace, name)


def simulate_controller(kube: KubeEmulator, namespace: str, name: str) -> int:
    """The Deployment controller's revision bookkeeping: the ReplicaSet whose template matches
    the Deployment's gets revision max+1 (created if none does); returns that revision."""
    dep = kube.get(DEPLOYMENTS, namespace, name)
    uid = dep["metadata"]["uid"]
    owned = [
        rs
        for rs in kube.list_objects(REPLICASETS, namespace)
        if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences", []))
    ]
    revisions = [int(rs["metadata"]["annotations"][REVISION_ANNOTATION]) for rs in owned]
    template = dep["spec"]["template"]
    current = (dep["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
    match = next((rs for rs in owned if same_template(rs["spec"]["template"], template)), None)
    if match is not None and match["metadata"]["annotations"][REVISION_ANNOTATION] == current:
        return int(current)
    revision = max(revisions, default=0) + 1
    if match is None:
        digest = hashlib.sha256(repr(sorted(template.items())).encode()).hexdigest()[:10]
        match = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-{digest}",
                "annotations": {},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": name,
                        "uid": uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {"template": clean_template(template)},
        }
        match["spec"]["template"]["metadata"]["labels"][HASH_LABEL] = digest
    match["metadata"]["annotations"][REVISION_ANNOTATION] = str(revision)
    kube.put(REPLICASETS, namespace, match["metadata"]["name"], match)
    dep = kube.get(DEPLOYMENTS, namespace, name)
    dep["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = str(revision)
    kube.put(DEPLOYMENTS, namespace, name, dep)
    return revision


def create_modelmonitor(
    kube: KubeEmulator, namespace: str, name: str, spec: dict[str, Any]
) -> None:
    kube.put(
        MODELMONITORS,
        namespace,
        name,
        {
            "apiVersion": "modelguard.dev/v1alpha1",
            "kind": "ModelMonitor",
            "metadata": {"generation": 1},
            "spec": spec,
        },
    )
