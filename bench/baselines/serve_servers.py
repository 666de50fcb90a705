"""Start, probe and stop the servers the benchmark compares.

Each server is a subprocess in its own session (process group), started on a free port and
stopped by signalling that group only, so nothing else on the machine is touched. The
MLServer baseline lives in its own virtualenv (`.venv-mlserver`: mlserver 1.7.1 needs
`uvloop==0.21.0`, upstream issue #2286) which is created here when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BASELINES = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
MLSERVER_VENV = REPO / ".venv-mlserver"
MLSERVER_REQUIREMENTS = [
    "mlserver==1.7.1",
    "mlserver-xgboost==1.7.1",
    "uvloop==0.21.0",  # 0.22+ crashes mlserver 1.7.1's worker (SeldonIO/MLServer#2286)
    "xgboost>=2.1,<3",  # the trainer's major version
]
QUIET_ENV = {"BENTOML_DO_NOT_TRACK": "true", "NML_DISABLE_USAGE_LOGGING": "1"}


@dataclass
class ServerSpec:
    """How to launch one server and where to send which payload."""

    name: str
    argv: list[str]
    cwd: Path
    ready_path: str
    predict_path: str
    protocol: str = "records"  # "records" = {"records": [...]}; "v2" = Open Inference Protocol
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0  # chosen at launch: `PORT` in argv / `http_port` in settings become it
    log_path: Path | None = None
    pid: int | None = None
    settings: dict[str, object] | None = None  # MLServer's settings.json, written at launch
    settings_path: Path | None = None


PORT = "{port}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server and all its worker processes so far.

    CPU per request is the figure that survives a shared machine: wall-clock throughput
    moves with whatever else runs, the work a request costs the server much less.
    """
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


UV_EXTRAS = REPO / ".venv-uvextras"
UV_EXTRAS_REQUIREMENTS = ["httptools>=0.6,<1", "uvloop>=0.21,<1"]


def with_uv_extras(spec: ServerSpec) -> ServerSpec:
    """Serve with uvicorn's C parts: httptools (HTTP parser) and uvloop (event loop).

    uvicorn picks both up when importable (`http="auto"`, `loop="auto"`; BentoML does not
    override them). They are installed into a side folder put first on the server's
    PYTHONPATH, so the shared .venv stays as it is.
    """
    if not (UV_EXTRAS / "uvloop").exists():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(UV_EXTRAS)]
        subprocess.run([*pip, *UV_EXTRAS_REQUIREMENTS], check=True)
    path = spec.env.get("PYTHONPATH", "")
    spec.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(UV_EXTRAS), path]))
    spec.name += "+uv"
    return spec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_env(bentoml_home: str, model_tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTOR_MONITOR")}
    env.update(QUIET_ENV)
    env.update({"BENTOML_HOME": bentoml_home, "PREDICTOR_MODEL_TAG": model_tag})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


class RecordSink:
    """The monitor's records and registration endpoints as a sink: 202/201, body discarded.

    The shipped server ships every record to it, so the shipped predictor's CPU per request
    includes record shipping; the sink runs in the bench process, not in the server's tree.
    """

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 201 if self.path == "/v1/models" else 202
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        Thread(target=self.server.serve_forever, daemon=True).start()


def shipped_available() -> bool:
    return (REPO / "bentos" / "service.py").exists() and (REPO / "bentofile.yaml").exists()


GC_HOOK = BASELINES / "gc_hook"


def shipped_spec(
    bentoml_home: str, model_tag: str, workers: int, extra_env: dict[str, str]
) -> ServerSpec:
    """The repository's own service, served the way `make serve` does (`bentoml serve .`),
    with the bench's worker count (PREDICTOR_WORKERS, docs/predictor.md).

    `extra_env` may carry BentoML overrides (`BENTOML_CONFIG_OPTIONS`) and the GC settings
    of `gc_hook/sitecustomize.py` (`BENCH_GC_*`), which is then put on PYTHONPATH.
    """
    env = _base_env(bentoml_home, model_tag) | {"PREDICTOR_WORKERS": str(workers)} | extra_env
    if any(k.startswith(("BENCH_GC", "BENCH_PATCH")) for k in extra_env):
        env["PYTHONPATH"] = os.pathsep.join([str(GC_HOOK), env["PYTHONPATH"]])
    argv = [str(VENV_BIN / "bentoml"), "serve", ".", "--port", PORT, "--host", "127.0.0.1"]
    return ServerSpec("shipped", argv, REPO, "/readyz", "/predict", env=env)


def stock_spec(
    bentoml_home: str, model_tag: str, workers: int, extra_env: dict[str, str], endpoint: str
) -> ServerSpec:
    """The stock BentoML service of `bento_stock/` (knobs via BENCH_* env)."""
    env = _base_env(bentoml_home, model_tag) | {"BENCH_WORKERS": str(workers)} | extra_env
    env["PYTHONPATH"] = os.pathsep.join([str(BASELINES), env["PYTHONPATH"]])
    argv = [str(VENV_BIN / "bentoml"), "serve", "stock_service:StockRain", "--port", PORT]
    argv += ["--host", "127.0.0.1"]
    return ServerSpec("stock", argv, BASELINES / "bento_stock", "/livez", f"/{endpoint}", env=env)


def bare_spec(bentoml_home: str, model_tag: str, workers: int) -> ServerSpec:
    """Starlette + uvicorn with the same worker count, same scoring code."""
    argv = [sys.executable, "bare_app.py", "--host", "127.0.0.1", "--port", PORT]
    argv += ["--workers", str(workers)]
    env = _base_env(bentoml_home, model_tag)
    return ServerSpec("bare", argv, BASELINES, "/livez", "/predict", env=env)


def ensure_mlserver_venv() -> Path:
    """Create `.venv-mlserver` with the pinned MLServer stack if it is not there yet."""
    mlserver = MLSERVER_VENV / "bin" / "mlserver"
    if mlserver.exists():
        return mlserver
    print(f"creating {MLSERVER_VENV} (one-off, ~1 min)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    pip = [str(MLSERVER_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *MLSERVER_REQUIREMENTS], check=True)
    return mlserver


def mlserver_spec(model_dir: Path, version: str, workers: int, workdir: Path) -> ServerSpec:
    """MLServer + mlserver-xgboost on the store's booster (copied as `model.ubj`).

    The xgboost runtime only looks for `model.bst|json|ubj`, so the store's
    `saved_model.ubj` is copied under that name. `parallel_workers` = the bench's workers.
    """
    mlserver = ensure_mlserver_venv()
    model_root = workdir / "rain"
    model_root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / "saved_model.ubj", model_root / "model.ubj")
    settings = {
        "name": "rain",
        "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": "./model.ubj", "version": version},
    }
    (model_root / "model-settings.json").write_text(json.dumps(settings, indent=2))
    server = {"host": "127.0.0.1", "parallel_workers": workers, "debug": False}
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env |= QUIET_ENV
    # One XGBoost (OpenMP) thread per worker, as the other servers: by default every
    # MLServer worker would start one per core and spin them against each other.
    env["OMP_NUM_THREADS"] = "1"
    argv = [str(mlserver), "start", str(workdir)]
    return ServerSpec(
        "mlserver",
        argv,
        workdir,
        "/v2/models/rain/ready",
        "/v2/models/rain/infer",
        protocol="v2",
        env=env,
        settings=server,
        settings_path=workdir / "settings.json",
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group, SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def running(spec: ServerSpec, logdir: Path, timeout: float = 90.0) -> Iterator[ServerSpec]:
    """Run the server until the block exits; yields once its readiness URL answers 200.

    The port is picked right before the launch, and picked again (3 tries) if someone else
    on this shared machine took it in between.
    """
    logdir.mkdir(parents=True, exist_ok=True)
    spec.log_path = logdir / f"{spec.name}.log"
    for attempt in range(3):
        proc = _launch(spec)
        try:
            _wait_ready(spec, proc, timeout)
        except RuntimeError:
            _stop(proc)
            in_use = "address already in use" in spec.log_path.read_text().lower()
            if in_use and attempt < 2:
                continue
            raise
        try:
            yield spec
        finally:
            _stop(proc)
        return


def _launch(spec: ServerSpec) -> subprocess.Popen[bytes]:
    assert spec.log_path is not None
    spec.port = free_port()
    argv = [str(spec.port) if a == PORT else a for a in spec.argv]
    if spec.settings is not None and spec.settings_path is not None:
        ports = {"http_port": spec.port, "grpc_port": free_port(), "metrics_port": free_port()}
        spec.settings_path.write_text(json.dumps(spec.settings | ports, indent=2))
    with spec.log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=spec.cwd, env=spec.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    spec.pid = proc.pid
    return proc


def _wait_ready(spec: ServerSpec, proc: subprocess.Popen[bytes], timeout: float) -> None:
    url = f"http://127.0.0.1:{spec.port}{spec.ready_path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{spec.name} exited with {proc.returncode}; see {spec.log_path}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{spec.name} not ready after {timeout:.0f}s; see {spec.log_path}")
