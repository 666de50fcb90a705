"""Start and stop the real processes: `bentoml serve` predictors and the monitor.

Used by the demo, `make replay` and the end-to-end tests, so all three run the same stack.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
QUIET_ENV = {"BENTOML_DO_NOT_TRACK": "true", "NML_DISABLE_USAGE_LOGGING": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return int(self.popen.returncode)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(name: str, cmd: list[str], env: dict[str, str], log: Path, url: str) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **QUIET_ENV, **env}
    with log.open("ab") as out:
        popen = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, url, popen, log)


def wait_ready(proc: Process, path: str = "/readyz", timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            if httpx.get(proc.url + path, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{proc.name} not ready after {timeout}s:\n{proc.tail()}")


def start_monitor(
    workdir: Path, token: str, port: int | None = None, extra_env: dict[str, str] | None = None
) -> Process:
    port = port or free_port()
    env = {
        "MONITOR_HOST": "127.0.0.1",
        "MONITOR_PORT": str(port),
        "MONITOR_DB_PATH": str(workdir / "monitor.db"),
        "MONITOR_REGISTRATION_TOKEN": token,
        "MONITOR_KUBERNETES": "off",
        "MONITOR_ANALYSIS_INTERVAL_SECONDS": "1",
        "MONITOR_RECONCILE_INTERVAL_SECONDS": "1",
        "MONITOR_REPORT_DIR": str(workdir / "reports"),
        **(extra_env or {}),
    }
    proc = _spawn(
        "monitor",
        [sys.executable, "-m", "monitor", "serve"],
        env,
        workdir / "logs" / "monitor.log",
        f"http://127.0.0.1:{port}",
    )
    wait_ready(proc)
    return proc


def start_predictor(
    workdir: Path,
    tag: str,
    monitor_url: str | None,
    token: str,
    name: str,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    service: str = ".",
) -> Process:
    """`bentoml serve` of the repo's service (`.` = bentofile.yaml) or another import path."""
    port = port or free_port()
    env = {
        "PREDICTOR_MODEL_TAG": tag,
        "PREDICTOR_EXPECTED_VERSION": tag.split(":", 1)[1],
        "PREDICTOR_MONITOR_TOKEN": token,
        "PREDICTOR_SPOOL_DIR": str(workdir / f"spool-{name}"),
        **({"PREDICTOR_MONITOR_URL": monitor_url} if monitor_url else {}),
        **(extra_env or {}),
    }
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    proc = _spawn(
        name,
        [bentoml, "serve", service, "--port", str(port), "--host", "127.0.0.1"],
        env,
        workdir / "logs" / f"{name}.log",
        f"http://127.0.0.1:{port}",
    )
    wait_ready(proc)
    return proc


@contextmanager
def running(*procs: Process) -> Iterator[None]:
    with ExitStack() as stack:
        for proc in procs:
            stack.callback(proc.stop)
        yield


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
