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
    port: int = 0
    log_path: Path | None = None
    pid: int | None = None


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


def shipped_available() -> bool:
    return (REPO / "bentos" / "service.py").exists() and (REPO / "bentofile.yaml").exists()


def shipped_spec(bentoml_home: str, model_tag: str, extra_env: dict[str, str]) -> ServerSpec:
    """The repository's own service, served the way `make serve` does (`bentoml serve .`)."""
    port = free_port()
    env = _base_env(bentoml_home, model_tag) | extra_env
    argv = [str(VENV_BIN / "bentoml"), "serve", ".", "--port", str(port), "--host", "127.0.0.1"]
    return ServerSpec("shipped", argv, REPO, "/readyz", "/predict", env=env, port=port)


def stock_spec(
    bentoml_home: str, model_tag: str, workers: int, extra_env: dict[str, str], endpoint: str
) -> ServerSpec:
    """The stock BentoML service of `bento_stock/` (knobs via BENCH_* env)."""
    port = free_port()
    env = _base_env(bentoml_home, model_tag) | {"BENCH_WORKERS": str(workers)} | extra_env
    env["PYTHONPATH"] = os.pathsep.join([str(BASELINES), env["PYTHONPATH"]])
    argv = [str(VENV_BIN / "bentoml"), "serve", "stock_service:StockRain", "--port", str(port)]
    argv += ["--host", "127.0.0.1"]
    return ServerSpec(
        "stock", argv, BASELINES / "bento_stock", "/livez", f"/{endpoint}", env=env, port=port
    )


def bare_spec(bentoml_home: str, model_tag: str, workers: int) -> ServerSpec:
    """Starlette + uvicorn with the same worker count, same scoring code."""
    port = free_port()
    argv = [sys.executable, "bare_app.py", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers)]
    env = _base_env(bentoml_home, model_tag)
    return ServerSpec("bare", argv, BASELINES, "/livez", "/predict", env=env, port=port)


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
    port = free_port()
    model_root = workdir / "rain"
    model_root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / "saved_model.ubj", model_root / "model.ubj")
    settings = {
        "name": "rain",
        "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": "./model.ubj", "version": version},
    }
    (model_root / "model-settings.json").write_text(json.dumps(settings, indent=2))
    server = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "host": "127.0.0.1",
        "parallel_workers": workers,
        "debug": False,
    }
    (workdir / "settings.json").write_text(json.dumps(server, indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env |= QUIET_ENV
    argv = [str(mlserver), "start", str(workdir)]
    return ServerSpec(
        "mlserver",
        argv,
        workdir,
        "/v2/models/rain/ready",
        "/v2/models/rain/infer",
        protocol="v2",
        env=env,
        port=port,
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
    """Run the server until the block exits; yields once its readiness URL answers 200."""
    logdir.mkdir(parents=True, exist_ok=True)
    spec.log_path = logdir / f"{spec.name}.log"
    with spec.log_path.open("wb") as log:
        proc = subprocess.Popen(
            spec.argv, cwd=spec.cwd, env=spec.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        spec.pid = proc.pid
        try:
            _wait_ready(spec, proc, timeout)
            yield spec
        finally:
            _stop(proc)


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
