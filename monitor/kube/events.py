"""Kubernetes Events about a ModelMonitor, named so that a retry never posts one twice."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from monitor.core.times import iso
from monitor.operator.ports import EventNote

GROUP, API_VERSION, PLURAL, KIND = "modelguard.dev", "v1alpha1", "modelmonitors", "ModelMonitor"
COMPONENT = "modelguard-monitor"


def event_body(monitor: Mapping[str, Any], note: EventNote) -> dict[str, Any]:
    """A core/v1 Event; its name is derived from `note.key`, so a retry after a crash
    re-creates the same Event (409, ignored) instead of posting a second one."""
    meta = monitor.get("metadata", {})
    digest = hashlib.sha256(f"{note.reason}/{note.key}".encode()).hexdigest()[:16]
    stamp = iso(note.time)
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
