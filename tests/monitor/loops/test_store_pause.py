"""A loop whose database is away pauses and resumes: one log line each way, not one per tick,
and `modelguard_monitor_store_up` follows."""

from __future__ import annotations

import logging
import threading

import pytest

from monitor.loops.background import BackgroundLoops
from monitor.metrics import process as metrics
from monitor.store.types import StoreUnavailableError


def test_a_loop_logs_pause_and_resume_once_while_the_database_is_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = ["down", "down", "down", "up", "up"]
    done = threading.Event()

    def work() -> None:
        outcome = outcomes.pop(0) if outcomes else "up"
        if not outcomes:
            done.set()
        if outcome == "down":
            raise StoreUnavailableError("PostgreSQL unreachable: connection refused")

    loops = BackgroundLoops()
    with caplog.at_level(logging.INFO, logger="modelguard.monitor"):
        loops.start("analysis", lambda: work, 0.01)
        assert done.wait(10)
        loops.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("analysis paused" in m for m in messages) == 1, messages
    assert sum("analysis resumed" in m for m in messages) == 1, messages
    assert not any(r.exc_info for r in caplog.records)  # no traceback per failed tick
    assert loops.failures["analysis"] == 3
    assert metrics.METRICS.store_up._value.get() == 1.0
