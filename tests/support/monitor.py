"""Start the REAL monitor (`python -m monitor serve`) on a free loopback port.

`running_monitor(tmp_path)` is the context manager integration and e2e tests use: a fresh
database under the given directory (or `db_path`), a registration token, Kubernetes off,
analysis and reconcile loops slow unless the test asks otherwise. It waits for `/readyz` and
always stops the server (SIGTERM, then SIGKILL). `MonitorProcess.kill()` is `kill -9` for the
crash tests; `restart()` starts a new server on the same port and database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from replay.stack import QUIET_ENV, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MonitorProcess:
    url: str
    port: int
    db_path: Path
    token: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "serve"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"monitor exited ({self.process.returncode}):\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"monitor not ready after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not exit in time."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return proc.returncode

    def kill(self) -> None:
        """kill -9 the server's process group: no shutdown code runs."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


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
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db = db_path or workdir / "monitor.db"
    full_env = {
        **os.environ,
        **QUIET_ENV,
        "MONITOR_HOST": "127.0.0.1",
        "MONITOR_PORT": str(port),
        "MONITOR_DB_PATH": str(db),
        "MONITOR_REGISTRATION_TOKEN": token,
        "MONITOR_KUBERNETES": "off",
        "MONITOR_ANALYSIS_INTERVAL_SECONDS": str(analysis_interval_seconds),
        "MONITOR_RECONCILE_INTERVAL_SECONDS": str(reconcile_interval_seconds),
        "MONITOR_REPORT_DIR": str(workdir / "reports"),
        **(env or {}),
    }
    monitor = MonitorProcess(
        url=f"http://127.0.0.1:{port}",
        port=port,
        db_path=db,
        token=token,
        env=full_env,
        log_path=workdir / "monitor.log",
    )
    try:
        monitor.start()
        yield monitor
    finally:
        monitor.stop()
