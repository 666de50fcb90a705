"""Wake the reconcile loop when a ModelMonitor appears or its spec changes.

The loop is level-triggered and periodic; this watch only shortens the wait: a new object or
a spec edit (its `metadata.generation` ahead of `status.observedGeneration`) reconciles at
once instead of at the next tick. Status writes (the monitor's own) do not bump the
generation, so they never wake it. Any watch failure just falls back to the periodic loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch

from monitor.kube.events import API_VERSION, GROUP, PLURAL
from monitor.operator.resource import ModelMonitor

LOG = logging.getLogger("modelguard.kube")


def spec_changed(event: dict[str, Any], seen: dict[tuple[str, str], int]) -> bool:
    """Whether a watch event carries a generation not yet reconciled nor already signalled."""
    if event.get("type") not in ("ADDED", "MODIFIED"):
        return False
    monitor = ModelMonitor.from_body(event.get("object") or {})
    key = (monitor.namespace, monitor.name)
    generation = monitor.generation or 0
    if generation <= monitor.observed_generation or seen.get(key) == generation:
        return False
    seen[key] = generation
    return True


def watch_spec_changes(
    custom_api: Any,
    group: str,
    version: str,
    plural: str,
    namespace: str | None,
    on_change: Callable[[], None],
    stop: threading.Event,
    read_timeout_seconds: float = 30.0,
) -> None:
    """Stream ModelMonitor events until `stop`; reconnects after errors and idle timeouts."""
    seen: dict[tuple[str, str], int] = {}
    while not stop.is_set():
        stream = watch.Watch()
        if namespace:
            call: Callable[..., Any] = custom_api.list_namespaced_custom_object
            args: tuple[Any, ...] = (group, version, namespace, plural)
        else:
            call, args = custom_api.list_cluster_custom_object, (group, version, plural)
        try:
            for event in stream.stream(call, *args, _request_timeout=read_timeout_seconds):
                if stop.is_set():
                    stream.stop()
                    break
                if spec_changed(event, seen):
                    on_change()
        except Exception as exc:  # idle read timeout, API restart...: reconnect
            LOG.debug("ModelMonitor watch ended (%s); reconnecting", exc.__class__.__name__)
            stop.wait(1.0)


def start_spec_watch(target: Any, on_change: Callable[[], None], stop: threading.Event) -> bool:
    """Start the watch for a target that talks to a real API server; False otherwise."""
    custom = getattr(target, "custom_api", None)
    if custom is None:
        return False
    thread = threading.Thread(
        target=watch_spec_changes,
        args=(custom, GROUP, API_VERSION, PLURAL, target.namespace, on_change, stop),
        name="modelmonitor-watch",
        daemon=True,
    )
    thread.start()
    return True
