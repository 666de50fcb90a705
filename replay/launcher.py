"""The one launcher of the real processes: the monitor, `bentoml serve` predictors, and any
other loopback server (Prometheus).

Used by the demo, `make replay`, the end-to-end harness, the integration tests and the
benchmarks, so all of them start the same processes with the same environment:

- `monitor(...)` / `predictor(...)` are the only places that build the monitor's and the
  predictor's command and environment (over `os.environ` and `QUIET_ENV`); they return a
  `Process` that is not started yet; `start_monitor(...)` / `start_predictor(...)` build
  and start one with the replay's settings;
- `Process` runs one server in its own session (process group) on a fixed loopback port:
  `start` (again after a stop or a crash: same port, same environment, same database),
  `wait_ready` (`/readyz`, or any path such as `/livez`), `stop` (a signal, SIGKILL after a
  timeout), `terminate` (SIGTERM to the server process only, as the kubelet does), `kill`
  (`kill -9`, no shutdown code runs), `restart`, and its log (`log`, `tail`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

REPO = Path(__file__).resolve().parent.parent
QUIET_ENV = {"BENTOML_DO_NOT_TRACK": "true", "NML_DISABLE_USAGE_LOGGING": "1"}
BENTOML = Path(sys.executable).with_name("bentoml")
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, library telemetry off, then `extra`."""
    return {**os.environ, **QUIET_ENV, **(extra or {})}


@dataclass(kw_only=True)
class Process:
    """One server subprocess on `HOST:port`, its output appended to `log_path`."""

    name: str
    cmd: list[str]
    env: dict[str, str]  # the complete environment
    port: int
    log_path: Path
    ready_path: str = "/readyz"
    starts: int = 0
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self, timeout: float = 120.0, ready_path: str | None = None) -> Self:
        """Spawn the server and wait until `ready_path` (default `self.ready_path`) answers
        200. After a stop or a crash this starts it again on the same port."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.popen.pid})")
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: start {self.starts} ---\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.cmd,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_ready(ready_path, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, path: str | None = None, timeout: float = 120.0) -> None:
        url = self.url + (path or self.ready_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                code = self.popen.returncode
                raise RuntimeError(f"{self.name} exited ({code}) before {url}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: {url} not ready after {timeout}s:\n{self.tail()}")

    def stop(
        self, sig: int = signal.SIGTERM, timeout: float = 30.0, *, group: bool = True
    ) -> int | None:
        """Send `sig` to the process group (`group=False`: to the server process only), wait
        up to `timeout`, then SIGKILL what is left of the group (workers too). Returns the
        exit code (negative: the signal), None if it was never started."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(popen.pid, sig)
                else:
                    popen.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(10)
        return popen.returncode

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM to the server process alone (what the kubelet does), then as `stop`."""
        return self.stop(signal.SIGTERM, timeout, group=False)

    def kill(self) -> int | None:
        """`kill -9` of the process group: no shutdown code runs."""
        return self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 120.0) -> Self:
        self.stop()
        return self.start(timeout)

    def log(self) -> str:
        """Everything the server wrote, over all its starts."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def role_tokens(token: str, *, reader: bool = False) -> dict[str, str]:
    """The monitor's bearer token per role for a stack on this machine, from one secret: the
    predictor's is `token` itself (what predictors are started with), the others differ
    from it and from each other (docs/monitor.md#trust-boundary). The reader's only with
    `reader` (without one, reads are open, as on loopback they may be)."""
    tokens = {"predictor": token, "labels": f"{token}-labels", "operator": f"{token}-operator"}
    if reader:
        tokens["reader"] = f"{token}-reader"
    return tokens


@dataclass(kw_only=True)
class MonitorProcess(Process):
    """The monitor, with the database file and the role tokens it was started with."""

    db_path: Path
    token: str  # the predictor token (predictors are started with it)
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token

    def headers(self, role: str) -> dict[str, str]:
        """`Authorization` for `role` (predictor, labels, operator, reader); {} if unset."""
        token = self.tokens.get(role)
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def auth(self) -> dict[str, str]:
        """The operator's header: registers any version name, clears rejections, declares
        known-goods, reads."""
        return self.headers("operator")


def monitor(
    workdir: Path,
    token: str,
    *,
    port: int | None = None,
    db_path: Path | None = None,
    log_path: Path | None = None,
    analysis_interval_seconds: float = 1.0,
    reconcile_interval_seconds: float = 1.0,
    env: Mapping[str, str] | None = None,
    reader_token: bool = False,
) -> MonitorProcess:
    """`python -m monitor serve` on loopback with Kubernetes off, not started; its database,
    reports and log under `workdir` unless given. One token per role (`role_tokens`; a
    reader token only with `reader_token`). `env` adds or overrides MONITOR_* (and any
    other) variables, e.g. `MONITOR_KUBERNETES=kubeconfig`."""
    port = port or free_port()
    db_path = db_path or workdir / "monitor.db"
    tokens = role_tokens(token, reader=reader_token)
    variables = {
        "MONITOR_HOST": HOST,
        "MONITOR_PORT": str(port),
        "MONITOR_DB_PATH": str(db_path),
        **{f"MONITOR_{role.upper()}_TOKEN": value for role, value in tokens.items()},
        "MONITOR_KUBERNETES": "off",
        "MONITOR_ANALYSIS_INTERVAL_SECONDS": f"{analysis_interval_seconds:g}",
        "MONITOR_RECONCILE_INTERVAL_SECONDS": f"{reconcile_interval_seconds:g}",
        "MONITOR_REPORT_DIR": str(workdir / "reports"),
    }
    return MonitorProcess(
        name="monitor",
        cmd=[sys.executable, "-m", "monitor", "serve"],
        env=process_env({**variables, **(env or {})}),
        port=port,
        log_path=log_path or workdir / "logs" / "monitor.log",
        db_path=db_path,
        token=token,
        tokens=tokens,
    )


def predictor(
    log_path: Path,
    *,
    tag: str | None = None,
    expected_version: str | None = None,
    monitor_url: str | None = None,
    token: str | None = None,
    spool_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    name: str = "predictor",
    port: int | None = None,
    service: str = ".",
) -> Process:
    """`bentoml serve` of the repo's service (`.` = bentofile.yaml) or another import path,
    not started. A PREDICTOR_* setting left None is not set here; `env` adds variables (and
    may carry all the PREDICTOR_* ones itself, plus BENTOML_HOME)."""
    port = port or free_port()
    settings = {
        "PREDICTOR_MODEL_TAG": tag,
        "PREDICTOR_EXPECTED_VERSION": expected_version,
        "PREDICTOR_MONITOR_URL": monitor_url,
        "PREDICTOR_MONITOR_TOKEN": token,
        "PREDICTOR_SPOOL_DIR": str(spool_dir) if spool_dir else None,
    }
    variables = {key: value for key, value in settings.items() if value is not None}
    return Process(
        name=name,
        cmd=[str(BENTOML), "serve", service, "--host", HOST, "--port", str(port)],
        env=process_env({**variables, **(env or {})}),
        port=port,
        log_path=log_path,
    )


def start_monitor(
    workdir: Path, token: str, port: int | None = None, extra_env: dict[str, str] | None = None
) -> MonitorProcess:
    """A started monitor with 1-s analysis and reconcile loops (the replay's pace)."""
    return monitor(workdir, token, port=port, env=extra_env).start()


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
    """A started predictor of BentoML `tag` (its version expected), shipping to the monitor
    at `monitor_url` (none: no shipping), spooling under `workdir`, logging to
    `workdir/logs/<name>.log`."""
    return predictor(
        workdir / "logs" / f"{name}.log",
        tag=tag,
        expected_version=tag.split(":", 1)[1],
        monitor_url=monitor_url,
        token=token,
        spool_dir=workdir / f"spool-{name}",
        env=extra_env,
        name=name,
        port=port,
        service=service,
    ).start()


@contextlib.contextmanager
def running(*procs: Process) -> Iterator[None]:
    """Stop every one of `procs` on exit, the last first."""
    with contextlib.ExitStack() as stack:
        for proc in procs:
            stack.callback(proc.stop)
        yield
