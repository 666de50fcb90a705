"""Ingest latency while an analysis cycle runs: the analysis worker process vs a server thread.

Per mode (`MONITOR_ANALYSIS_WORKER=true`, the default, and `false`, the cycle in a thread of
the server as before), in the same run on the same machine:

1. A database is filled in-process with the good model's registration and `--rows` records
   (replay rows scored by the model, half of them labelled): a cycle over all of them is
   the first thing the analysis does.
2. A real `python -m monitor serve` (tests/support/monitor.py) starts on it; its first
   analysis cycle begins `--quiet` seconds later.
3. One sender posts batches of 100 records to `/v1/records` every 20 ms throughout, and
   logs each request's latency. "Outside" is the quiet phase before the cycle, "during" is
   from the cycle's start until its chunks are stored.

Reported: p50/p99 outside and during, and the ratio p99 during / p99 outside (target <= 2).
Writes bench/results/ingest_during_analysis.json. About 3 minutes on 2 cores.
    python bench/ingest_during_analysis.py [--rows 150000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from tests.support.monitor import RoleAuth, running_monitor  # noqa: E402
from tests.support.records import served  # noqa: E402

BATCH = 100
PERIOD = 0.02


def fill(db: Path, reg: Any, split: Any, rows: int) -> tuple[list[dict], int]:
    """The registration and `rows` records (half labelled); returns fresh records to post."""
    from monitor.store.sqlite import SqliteStore

    base, labels = served(split, reg, 0, 5_000, "fill")
    with SqliteStore(db) as store:
        store.register(reg)
        for start in range(0, rows, 5_000):
            part = [
                {**r, "prediction_id": f"{start + i}-{r['prediction_id']}"}
                for i, r in enumerate(base[: min(5_000, rows - start)])
            ]
            store.append_records(part)
            store.append_labels(
                [
                    {"prediction_id": p["prediction_id"], "label": lab["label"]}
                    for p, lab in zip(part[::2], labels[::2], strict=False)
                ]
            )
    return base, rows // 500


def run_mode(workdir: Path, reg: Any, split: Any, rows: int, worker: bool, quiet: float) -> Any:
    db = workdir / f"monitor-{'worker' if worker else 'thread'}.db"
    base, chunks_expected = fill(db, reg, split, rows)
    env = {
        "MONITOR_ANALYSIS_WORKER": "true" if worker else "false",
        "MONITOR_OPERATOR": "false",
        "MONITOR_CHUNK_SIZE": "500",
    }
    latencies: list[tuple[float, float]] = []
    stop = threading.Event()
    with running_monitor(
        workdir / ("w" if worker else "t"), db_path=db, env=env, analysis_interval_seconds=quiet
    ) as mon:
        started = time.monotonic()  # the analysis loop's first interval starts about now
        auth = RoleAuth(mon)

        def send() -> None:
            n = 0
            with httpx.Client(base_url=mon.url, timeout=60, auth=auth) as client:
                while not stop.is_set():
                    t0 = time.monotonic()
                    batch = [
                        {**r, "prediction_id": f"live-{n}-{i}"}
                        for i, r in enumerate(base[(n * BATCH) % 4_900 :][:BATCH])
                    ]
                    n += 1
                    resp = client.post("/v1/records", json={"records": batch})
                    took = time.monotonic() - t0
                    if resp.status_code != 202:
                        raise RuntimeError(f"{resp.status_code}: {resp.text[:300]}")
                    latencies.append((t0 - started, took))
                    time.sleep(max(0.0, PERIOD - took))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        proc = psutil.Process(mon.popen.pid)
        deadline = time.monotonic() + 600
        with httpx.Client(base_url=mon.url, timeout=60, auth=auth) as client:
            while time.monotonic() < deadline:
                got = len(client.get("/v1/models/rain_forecast/chunks").json())
                if got >= chunks_expected:
                    break
                time.sleep(0.5)
        finished = time.monotonic() - started
        time.sleep(2)
        stop.set()
        sender.join(30)
        rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    outside = np.array([d for t, d in latencies if 2.0 <= t < quiet - 0.5])
    during = np.array([d for t, d in latencies if quiet <= t < finished])
    return {
        "mode": "worker process" if worker else "server thread",
        "rows_analysed": rows,
        "chunks": chunks_expected,
        "cycle_seconds": round(finished - quiet, 1),
        "requests_outside": len(outside),
        "requests_during": len(during),
        "p50_ms_outside": round(1000 * float(np.percentile(outside, 50)), 1),
        "p99_ms_outside": round(1000 * float(np.percentile(outside, 99)), 1),
        "p50_ms_during": round(1000 * float(np.percentile(during, 50)), 1),
        "p99_ms_during": round(1000 * float(np.percentile(during, 99)), 1),
        "p99_ratio": round(float(np.percentile(during, 99) / np.percentile(outside, 99)), 2),
        "rss_mib_end": round(rss / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--quiet", type=float, default=20.0)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench/results/ingest_during_analysis.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        import bentoml

        from bentos.packaging import registration_from_bento_model
        from bentos.training.data import load_weather, time_split, weather_schema
        from bentos.training.train import RELEASES, save_to_store, train_release

        schema = weather_schema()
        split = time_split(load_weather(), schema)
        tag = save_to_store(train_release(RELEASES["good"], split, schema), schema)
        reg = registration_from_bento_model(bentoml.models.get(tag))
        runs = [
            run_mode(Path(tmp), reg, split, args.rows, worker, args.quiet)
            for worker in (True, False)
        ]
    load = os.getloadavg()
    result = {
        "command": "python bench/ingest_during_analysis.py",
        "machine": f"{os.cpu_count()} cores, load average {load[0]:.1f} at the end",
        "sender": f"1 client, {BATCH} records per POST every {PERIOD * 1000:.0f} ms",
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    heads = ("p50 out", "p99 out", "p50 in", "p99 in", "ratio", "cycle s")
    print(f"{'mode':<16}" + "".join(f"{h:>9}" for h in heads))
    for r in runs:
        print(
            f"{r['mode']:<16}{r['p50_ms_outside']:>9}{r['p99_ms_outside']:>9}"
            f"{r['p50_ms_during']:>9}{r['p99_ms_during']:>9}{r['p99_ratio']:>7}{r['cycle_seconds']:>9}"
        )


if __name__ == "__main__":
    main()
