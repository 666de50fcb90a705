"""Start the REAL monitor (`python -m monitor serve`) on a free loopback port.

`running_monitor(tmp_path)` is the context manager integration tests and benchmarks use: a
fresh database under the given directory (or `db_path`), a registration token, Kubernetes
off, analysis and reconcile loops slow unless the test asks otherwise. It waits for
`/readyz` and always stops the server (SIGTERM, then SIGKILL). The process is
`replay.launcher`'s: `kill()` is `kill -9` for the crash tests; `start()` after a stop or a
kill starts a new server on the same port and database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from monitor.settings import MonitorSettings
from replay import launcher
from replay.launcher import MonitorProcess

__all__ = ["MonitorProcess", "measuring_settings", "running_monitor"]


def measuring_settings(workdir: Path, chunk_size: int = 500) -> MonitorSettings:
    """The monitor's real settings, as an in-process measuring monitor with no cluster has
    them (for tests that run the analysis cycle without a server)."""
    return MonitorSettings(
        db_path=workdir / "monitor.db",
        chunk_size=chunk_size,
        operator=False,
        kubernetes="off",
        namespace="default",
        report_dir=workdir / "reports",
    )


@contextlib.contextmanager
def running_monitor(
    workdir: Path,
    *,
    db_path: Path | None = None,
    token: str = "test-registration-token",
    env: dict[str, str] | None = None,
    analysis_interval_seconds: float = 3600.0,
    reconcile_interval_seconds: float = 3600.0,
) -> Iterator[MonitorProcess]:
    """A started monitor; always stopped on exit (also when the test fails)."""
    monitor = launcher.monitor(
        workdir,
        token,
        db_path=db_path,
        env=env,
        analysis_interval_seconds=analysis_interval_seconds,
        reconcile_interval_seconds=reconcile_interval_seconds,
    )
    try:
        yield monitor.start(timeout=60)
    finally:
        monitor.stop()
