"""Inference-logging cost and loss, measured on the real predictor (`bentoml serve`).

1. Throughput with logging off vs on, same run, same load (wrk, single-record POSTs):
   target on/off >= 0.9.
2. Zero loss: records served (200 responses) vs records received (distinct prediction_id)
   across a 10-s receiver outage under sustained load, a burst of 100-record requests, and a
   SIGTERM of the predictor under load (its records must arrive before it exits, or from
   the spool via the next process).

The receiver is `tests.support.predictor.RecordReceiver`, a protocol peer of the monitor's
`POST /v1/records`. Prints a table; writes bench/results/logging.json. About 2-3 minutes.

    BENTOML_HOME=/tmp/bhome .venv/bin/python bench/logging_bench.py [--model rain_forecast:latest]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from replay.launcher import Process
from tests.support.predictor import RecordReceiver, running_predictor

RESULTS = Path(__file__).resolve().parent / "results" / "logging.json"
RECORD = {
    "origin": "JFK",
    "hour": 14,
    "temp": 71.1,
    "dewp": 60.1,
    "humid": 68.3,
    "wind_dir": 200.0,
    "wind_speed": 10.4,
    "wind_gust": None,
    "precip": 0.0,
    "pressure": 1012.5,
    "visib": 10.0,
}


def wrk_rps(url: str, seconds: int, connections: int) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    body = json.dumps({"records": [RECORD]}).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url + "/predict",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p99_ms": p99_ms, "non_2xx": float(non2xx.group(1)) if non2xx else 0.0}


class Load:
    """Threads POSTing `size`-record requests; counts the records of 200 responses."""

    def __init__(self, url: str, size: int, threads: int) -> None:
        self.url, self.size, self.threads = url, size, threads
        self.served = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []

    def _one(self, client: httpx.Client) -> None:
        try:
            resp = client.post(self.url + "/predict", json={"records": [RECORD] * self.size})
        except httpx.HTTPError:
            with self._lock:
                self.errors += 1
            return
        with self._lock:
            if resp.status_code == 200:
                self.served += len(resp.json())
            else:
                self.errors += 1

    def _loop(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                self._one(client)

    def start(self) -> None:
        self._pool = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for t in self._pool:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._pool:
            t.join(60)

    def burst(self, requests: int) -> None:
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(lambda _: self._one(client), range(requests)))


def env(model: str, receiver: RecordReceiver | None, spool: Path) -> dict[str, str]:
    out = {"PREDICTOR_MODEL_TAG": model, "PREDICTOR_SPOOL_DIR": str(spool)}
    if receiver is not None:
        out |= {"PREDICTOR_MONITOR_URL": receiver.url, "PREDICTOR_MONITOR_TOKEN": "bench"}
    return out


def loss_row(name: str, served: int, received: int, errors: int) -> dict[str, Any]:
    return {
        "scenario": name,
        "served": served,
        "received": received,
        "lost": served - received,
        "request_errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--model", default=os.environ.get("PREDICTOR_MODEL_TAG", "rain_forecast:latest")
    )
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logging-bench-"))
    result: dict[str, Any] = {"model": args.model, "connections": args.connections}

    # 1. throughput, logging off vs on
    with running_predictor(env(args.model, None, work / "s0"), work / "off.log") as proc:
        wrk_rps(proc.url, 2, args.connections)  # warm-up
        off = wrk_rps(proc.url, args.seconds, args.connections)
    with (
        RecordReceiver(keep_records=False) as rx,
        running_predictor(env(args.model, rx, work / "s1"), work / "on.log") as proc,
    ):
        wrk_rps(proc.url, 2, args.connections)
        on = wrk_rps(proc.url, args.seconds, args.connections)
        shipped_during = rx.count()
    result["throughput"] = {
        "off": off,
        "on": on,
        "ratio": on["rps"] / off["rps"],
        "records_received_with_logging_on": shipped_during,
    }

    # 2. zero loss
    losses = []
    rx = RecordReceiver(keep_records=False)
    rx.up()
    try:
        with running_predictor(env(args.model, rx, work / "s2"), work / "outage.log") as proc:
            load = Load(proc.url, size=10, threads=4)
            load.start()
            time.sleep(4)
            rx.down()
            time.sleep(10)  # the outage, under load
            rx.up()
            time.sleep(4)
            load.stop()
            losses.append(
                loss_row(
                    "10-s receiver outage under load",
                    load.served,
                    rx.wait_for(load.served, 60),
                    load.errors,
                )
            )
            before = rx.count()
            burst = Load(proc.url, size=100, threads=16)
            burst.burst(400)
            losses.append(
                loss_row(
                    "burst: 400 x 100-record requests, 16 concurrent",
                    burst.served,
                    rx.wait_for(before + burst.served, 60) - before,
                    burst.errors,
                )
            )
        before = rx.count()
        proc2: Process
        with running_predictor(env(args.model, rx, work / "s3"), work / "sigterm.log") as proc2:
            load = Load(proc2.url, size=10, threads=4)
            load.start()
            time.sleep(3)
            proc2.terminate()
            load.stop()
        received = rx.wait_for(before + load.served, 10) - before
        losses.append(loss_row("SIGTERM under load", load.served, received, load.errors))
    finally:
        rx.down()
    result["loss"] = losses

    print(
        f"\nLogging overhead (wrk, c={args.connections}, {args.seconds}s, single-record /predict)"
    )
    print(f"{'':14}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for name, row in (("logging off", off), ("logging on", on)):
        print(f"{name:14}{row['rps']:>10.0f}{row['p99_ms']:>10.1f}{row['non_2xx']:>10.0f}")
    print(f"ratio on/off: {result['throughput']['ratio']:.2f} (target >= 0.90)\n")
    print(f"{'scenario':52}{'served':>9}{'received':>10}{'lost':>6}{'errors':>8}")
    for row in losses:
        print(
            f"{row['scenario']:52}{row['served']:>9}{row['received']:>10}{row['lost']:>6}"
            f"{row['request_errors']:>8}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {RESULTS}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
