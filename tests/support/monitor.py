"""Start the REAL monitor (`python -m monitor serve`) on a free loopback port.

`running_monitor(tmp_path)` is the context manager integration tests and benchmarks use: a
fresh database under the given directory (or `db_path`), a registration token, Kubernetes
off, analysis and reconcile loops slow unless the test asks otherwise. It waits for
`/readyz` and always stops the server (SIGTERM, then SIGKILL). The process is
`replay.launcher`'s: `kill()` is `kill -9` for the crash tests; `start()` after a stop or a
kill starts a new server on the same port and database.

The monitor runs with one token per role (`replay.launcher.role_tokens`). `RoleAuth(monitor)`
is an httpx auth that sends each request the token of the role its route needs (records:
predictor, labels: labels, writes under /v1/models/...: operator, reads: reader when the
monitor has one), unless the request carries its own Authorization header: a test client
built with it behaves like the right caller for every route, and an attack test overrides it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx

from monitor.core.settings import (
    AnalysisSettings,
    KubernetesSettings,
    MonitorSettings,
    OperatorSettings,
    StoreSettings,
)
from replay import launcher
from replay.launcher import MonitorProcess

__all__ = [
    "MonitorProcess",
    "RoleAuth",
    "measuring_settings",
    "register_as",
    "role_for",
    "running_monitor",
]


def role_for(method: str, path: str) -> str:
    """The role whose token the monitor's route `method path` needs."""
    if path == "/v1/records":
        return "predictor"
    if path == "/v1/labels":
        return "labels"
    if method != "GET":
        return "operator"  # registration under any name, clear-rejection, known-good
    return "reader"


class RoleAuth(httpx.Auth):
    """Each request with the token of the role its route needs (see the module docstring)."""

    def __init__(self, monitor: MonitorProcess) -> None:
        self.monitor = monitor

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers.update(self.monitor.headers(role_for(request.method, request.url.path)))
        yield request


def measuring_settings(workdir: Path, chunk_size: int = 500) -> MonitorSettings:
    """The monitor's real settings, as an in-process measuring monitor with no cluster has
    them (for tests that run the analysis cycle without a server)."""
    return MonitorSettings(
        store=StoreSettings(db_path=workdir / "monitor.db"),
        analysis=AnalysisSettings(chunk_size=chunk_size, report_dir=workdir / "reports"),
        operator=OperatorSettings(enabled=False),
        kubernetes=KubernetesSettings(access="off", namespace="default"),
    )


def register_as(monitor: MonitorProcess, registration: Any, *versions: str) -> None:
    """Register a real registration under other version names (operator token: any name),
    for tests whose records name a version of their own (records of an unregistered version
    are refused, 425)."""
    body = registration.model_dump(by_alias=True, mode="json")
    for version in versions:
        resp = httpx.post(
            f"{monitor.url}/v1/models",
            json={**body, "version": version},
            headers=monitor.auth,
            timeout=120,
        )
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"registering {version}: {resp.status_code} {resp.text[:500]}")


@contextlib.contextmanager
def running_monitor(
    workdir: Path,
    *,
    db_path: Path | None = None,
    token: str = "test-registration-token",
    env: dict[str, str] | None = None,
    analysis_interval_seconds: float = 3600.0,
    reconcile_interval_seconds: float = 3600.0,
    reader_token: bool = False,
) -> Iterator[MonitorProcess]:
    """A started monitor; always stopped on exit (also when the test fails). `reader_token`:
    reads need the reader (or operator) token too."""
    monitor = launcher.monitor(
        workdir,
        token,
        db_path=db_path,
        env=env,
        reader_token=reader_token,
        analysis_interval_seconds=analysis_interval_seconds,
        reconcile_interval_seconds=reconcile_interval_seconds,
    )
    try:
        yield monitor.start(timeout=60)
    finally:
        monitor.stop()
