"""What wakes the reconcile loop early: new ModelMonitors and spec edits, not status writes."""

from __future__ import annotations

import threading
from typing import Any

from monitor.kube.watch import spec_changed
from monitor.loops.background import BackgroundLoops, waking


def event(kind: str, generation: int, observed: int | None = None) -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed}
    return {
        "type": kind,
        "object": {
            "metadata": {"namespace": "ns", "name": "rain", "generation": generation},
            "status": status,
        },
    }


def test_new_and_edited_specs_wake_status_writes_and_repeats_do_not() -> None:
    seen: dict[tuple[str, str], int] = {}
    assert spec_changed(event("ADDED", 1), seen)  # never reconciled yet
    assert not spec_changed(event("MODIFIED", 1), seen)  # same generation again
    assert not spec_changed(event("MODIFIED", 1, observed=1), seen)  # our status write
    assert spec_changed(event("MODIFIED", 2, observed=1), seen)  # kubectl edit of the spec
    assert not spec_changed(event("DELETED", 3, observed=2), seen)
    assert not spec_changed(event("ADDED", 5, observed=5), seen)  # already reconciled


def test_a_woken_loop_runs_before_its_interval_and_stops_cleanly() -> None:
    loops = BackgroundLoops()
    ran = threading.Event()
    loops.start("reconcile", lambda: ran.set, interval_seconds=3600)
    loops.waker("reconcile")()
    assert ran.wait(30), "the woken loop never ran its pass"
    loops.stop(timeout_seconds=30)
    assert loops.passes["reconcile"] >= 1


def test_analysis_that_produced_evidence_wakes_the_reconcile_loop() -> None:
    woken: list[int] = []
    results = iter([["chunk"], []])
    run = waking(lambda: next(results), lambda: woken.append(1))
    assert run is not None
    run()
    run()
    assert woken == [1]
    assert waking(None, lambda: None) is None
