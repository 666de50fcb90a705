"""Coordinating the running stack through the monitor's API: tokens, versions, registration
and probation waits.

The processes themselves (monitor, predictors, Prometheus) are started and stopped by
`replay.launcher`, shared by the demo, `make replay` and the tests.
"""

from __future__ import annotations

import secrets
import time

import httpx

from replay.launcher import Process


def new_token() -> str:
    return secrets.token_urlsafe(24)


def version_of(tag: str) -> str:
    """`rain_forecast:good-362025e520` -> `good-362025e520`."""
    return tag.split(":", 1)[1]


def _versions(monitor: Process) -> list[dict[str, object]]:
    return list(httpx.get(f"{monitor.url}/v1/models", timeout=10).json())


def wait_registered(monitor: Process, version: str, timeout: float = 60) -> None:
    """Until the predictor of `version` has registered it (registration is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(v["version"] == version and v.get("registered_at") for v in _versions(monitor)):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{version} never registered with the monitor")


def wait_known_good(monitor: Process, version: str, timeout: float = 300) -> None:
    """Until the monitor's operator holds `version` as known-good (passed probation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(
            v["version"] == version and v.get("state") == "known-good" for v in _versions(monitor)
        ):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{version} did not pass probation within {timeout}s")
