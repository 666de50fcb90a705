"""Which worker serves the connections? Per-process CPU and connections under keep-alive load.

The issue-22 question: with `PREDICTOR_WORKERS=2`, does each worker get connections and
CPU, or does one process accept them all? This starts a server (`shipped` or `bare`, as
`serve_bench.py` does), runs `wrk -c32` with single-record bodies, and reports for every
process of the server's tree: the established connections it holds (from /proc via psutil)
and its CPU seconds over the run; plus wrk's own CPU and the CPU affinity of each process.

    .venv/bin/python bench/baselines/worker_balance.py --only shipped,bare --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
import serve_load  # noqa: E402
import serve_scoring  # noqa: E402
import serve_servers  # noqa: E402


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


def _conns(proc: psutil.Process, port: int) -> int:
    try:
        return sum(
            1
            for c in proc.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    except psutil.Error:
        return 0


def measure(spec: Any, body: Path, seconds: float, conns: int) -> dict[str, Any]:
    """One wrk run; per process: connections mid-run, CPU seconds over the run, affinity."""
    assert spec.pid is not None
    procs = _tree(spec.pid)
    before = {p.pid: _cpu(p) for p in procs}
    argv = [serve_load.wrk_path(), "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s"]
    argv += ["--timeout", "10s", "-s", str(serve_load.LUA_SCRIPT)]
    argv.append(f"http://127.0.0.1:{spec.port}{spec.predict_path}")
    wrk = subprocess.Popen(
        argv, env=os.environ | {"WRK_BODY_FILE": str(body)}, stdout=subprocess.PIPE, text=True
    )
    wrk_ps = psutil.Process(wrk.pid)
    time.sleep(seconds / 2)
    held = {p.pid: _conns(p, spec.port) for p in procs}
    wrk_cpu = _cpu(wrk_ps)
    out, _ = wrk.communicate()
    result = serve_load.parse_wrk(out, 1)
    rows = []
    for p in procs:
        try:
            affinity = p.cpu_affinity()
            cmd = " ".join(p.cmdline())[:60]
        except psutil.Error:
            affinity, cmd = [], "?"
        rows.append(
            {
                "pid": p.pid,
                "cmd": cmd,
                "connections": held[p.pid],
                "cpu_s": round(_cpu(p) - before[p.pid], 3),
                "affinity": affinity,
            }
        )
    total = sum(r["cpu_s"] for r in rows)
    return {
        "req_per_s": result.req_per_s,
        "p99_ms": result.p99_ms,
        "server_cores_busy": round(total / result.seconds, 2),
        "wrk_cpu_s_at_half_run": round(wrk_cpu, 3),
        "processes": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="shipped,bare")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    tag = os.environ.get("PREDICTOR_MODEL_TAG", "rain_forecast:latest")
    ap.add_argument("--model-tag", default=tag)
    ap.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", "var/bentoml"))
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the servers")
    ap.add_argument("--output", type=Path)
    args = ap.parse_args()
    home = str(Path(args.bentoml_home).resolve())
    model = serve_scoring.load(args.model_tag, home)
    records = serve_load.replay_records(model.schema, 400)
    workdir = Path(tempfile.mkdtemp(prefix="balance-"))
    body = serve_load.write_bodies(records, model.schema, "records", 1, workdir / "single.txt")
    extra = dict(kv.split("=", 1) for kv in args.env)
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "load_before": os.getloadavg()}
    for name in args.only.split(","):
        if name == "shipped":
            spec = serve_servers.shipped_spec(home, args.model_tag, args.workers, extra)
        else:
            spec = serve_servers.bare_spec(home, args.model_tag, args.workers)
            spec.env |= extra
        with serve_servers.running(spec, workdir / "logs"):
            measure(spec, body, 2, args.connections)  # warm-up
            out[name] = measure(spec, body, args.seconds, args.connections)
        print(name, json.dumps(out[name], indent=1), flush=True)
    out["load_after"] = os.getloadavg()
    if args.output:
        args.output.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
