"""Kubernetes Events about a ModelMonitor, named so that a retry never posts one twice."""

from __future__ import annotations

import hashlib
from typing import Any

from monitor.core.times import iso
from monitor.operator.ports import EventNote
from monitor.operator.resource import ModelMonitor

GROUP, API_VERSION, PLURAL, KIND = "modelguard.dev", "v1alpha1", "modelmonitors", "ModelMonitor"
COMPONENT = "modelguard-monitor"


def event_body(monitor: ModelMonitor, note: EventNote) -> dict[str, Any]:
    """A core/v1 Event; its name is derived from `note.key`, so a retry after a crash
    re-creates the same Event (409, ignored) instead of posting a second one."""
    digest = hashlib.sha256(f"{note.reason}/{note.key}".encode()).hexdigest()[:16]
    stamp = iso(note.time)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{monitor.name}.{digest}", "namespace": monitor.namespace},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": monitor.name,
            "namespace": monitor.namespace,
            "uid": monitor.uid,
        },
        "reason": note.reason,
        "message": note.message[:1024],
        "type": "Warning" if note.warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": f"{GROUP}/monitor",
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
