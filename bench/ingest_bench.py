"""Monitor ingest and read benchmark: records/s over HTTP, and `records_frame` at 10k-1M rows.

1. Ingest: a real `python -m monitor serve` (tests/support/monitor.py) on loopback; 1, 2 and 4
   concurrent senders post pre-serialised batches of 500 realistic records (10 weather
   features, uuid ids) to `/v1/records`; records/s = acknowledged records / wall time.
   Target: >= 20,000 records/s.
2. Read: a database filled with 1M records (in-process, no HTTP), then `records_frame` of the
   newest 10k, 100k and 1M rows, each in a fresh subprocess so its peak RSS
   (`resource.getrusage`) is its own. Target: >= 100,000 rows/s.

Writes bench/results/ingest.json and prints a table. About 2-3 minutes on 2 cores.
    python bench/ingest_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import httpx  # noqa: E402
import psutil  # noqa: E402

from tests.support.monitor import register_as, running_monitor  # noqa: E402

BATCH = 500
ORIGINS = ("EWR", "JFK", "LGA")


def record(version: str = "v-bench") -> dict[str, Any]:
    r = random.random
    return {
        "prediction_id": uuid.uuid4().hex,
        "model": "rain_forecast",
        "version": version,
        "timestamp": "2013-07-01T12:00:00+00:00",
        "features": {
            "origin": random.choice(ORIGINS),
            "temp": round(50 + 40 * r(), 2),
            "dewp": round(30 + 40 * r(), 2),
            "humid": round(100 * r(), 2),
            "wind_dir": float(random.randrange(0, 360, 10)),
            "wind_speed": round(20 * r(), 3),
            "wind_gust": None if r() < 0.7 else round(30 * r(), 3),
            "precip": 0.0,
            "pressure": None if r() < 0.1 else round(1000 + 30 * r(), 1),
            "visib": 10.0,
        },
        "probability": r(),
        "predicted_class": int(r() < 0.2),
    }


def ingest(
    url: str, senders: int, total: int, server_pid: int, headers: dict[str, str]
) -> dict[str, Any]:
    per_sender = total // senders // BATCH
    bodies = [
        [json.dumps({"records": [record() for _ in range(BATCH)]}).encode() for _ in range(n)]
        for n in [per_sender] * senders
    ]
    acked = [0] * senders
    errors = [0] * senders

    def send(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for body in bodies[i]:
                resp = client.post(
                    "/v1/records",
                    content=body,
                    headers={"content-type": "application/json", **headers},
                )
                if resp.status_code == 202:
                    acked[i] += resp.json()["accepted"]
                else:
                    errors[i] += 1

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    server = psutil.Process(server_pid)
    cpu_before = server.cpu_times()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu_after = server.cpu_times()
    server_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return {
        "senders": senders,
        "batch": BATCH,
        "records": sum(acked),
        "errors": sum(errors),
        "seconds": round(elapsed, 2),
        "records_per_second": round(sum(acked) / elapsed),
        # Contention-free view: records per CPU-second of the server process. The machine
        # is shared (2 cores, the senders run on it too), so wall-clock rates are a floor.
        "server_cpu_seconds": round(server_cpu, 2),
        "records_per_server_cpu_second": round(sum(acked) / server_cpu) if server_cpu else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


READER = """
import json, resource, sys, time
from monitor.store.sqlite import SqliteStore
store = SqliteStore(sys.argv[1])
rows = int(sys.argv[2])
after = max(0, int(sys.argv[3]) - rows)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
frame = store.records_frame("rain_forecast", "v-read", after_seq=after)
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(frame), "seconds": round(elapsed, 3),
                  "rows_per_second": round(len(frame) / elapsed),
                  "columns": len(frame.columns),
                  "peak_rss_mib": round(peak / 1024), "rss_before_read_mib": round(base / 1024)}))
"""


def fill_for_reading(db: Path, rows: int) -> None:
    """`rows` records (half of them labelled) written straight into the store's tables.

    Bench set-up only: one transaction with `synchronous=OFF` and a pool of pre-encoded
    feature rows, so filling 1M rows takes seconds; the schema comes from `SqliteStore` itself.
    """
    import sqlite3

    from pydantic_core import to_json

    from monitor.store.sqlite import SqliteStore
    from monitor.store.types import to_epoch_us

    SqliteStore(db).close()  # creates the schema
    pool = [to_json(record()["features"]).decode() for _ in range(1000)]
    start_us = to_epoch_us("2013-07-01T00:00:00Z")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for first in range(0, rows, 100_000):
        ids = [uuid.uuid4().hex for _ in range(first, min(rows, first + 100_000))]
        conn.executemany(
            "INSERT INTO records (prediction_id, model, version, ts_us, features, probability,"
            " predicted_class) VALUES (?, 'rain_forecast', 'v-read', ?, ?, ?, ?)",
            (
                (pid, start_us + (first + i) * 1_000_000, pool[i % 1000], random.random(), i % 2)
                for i, pid in enumerate(ids)
            ),
        )
        conn.executemany(
            "INSERT INTO labels (prediction_id, label, received_at) VALUES (?, 1, '')",
            ((pid,) for pid in ids[::2]),
        )
    conn.execute("COMMIT")
    conn.close()


READER = """
import json, sys, time
from monitor.store.sqlite import SqliteStore

def hwm_mib():  # this process's peak RSS (VmHWM is reset by exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)

store = SqliteStore(sys.argv[1])
rows = int(sys.argv[2])
after = max(0, int(sys.argv[3]) - rows)
store.count_records("rain_forecast", "v-read")  # open the reader connection
base = hwm_mib()
t = time.perf_counter()
frame = store.records_frame("rain_forecast", "v-read", after_seq=after)
elapsed = time.perf_counter() - t
print(json.dumps({"rows": len(frame), "seconds": round(elapsed, 3),
                  "rows_per_second": round(len(frame) / elapsed),
                  "columns": len(frame.columns),
                  "labelled": int(frame["label"].notna().sum()),
                  "peak_rss_mib": hwm_mib(), "rss_before_read_mib": base}))
"""


def read_speed(sizes: list[int]) -> list[dict[str, Any]]:
    biggest = max(sizes)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "read.db"
        started = time.perf_counter()
        fill_for_reading(db, biggest)
        print(f"filled {biggest:,} rows in {time.perf_counter() - started:.1f}s (set-up)")
        results = []
        for rows in sizes:
            best: dict[str, Any] | None = None
            for _ in range(2):  # the better of two: the machine is shared
                out = subprocess.run(
                    [sys.executable, "-c", READER, str(db), str(rows), str(biggest)],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                run = json.loads(out.stdout)
                if best is None or run["seconds"] < best["seconds"]:
                    best = run
            assert best is not None
            results.append(best)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes (a smoke run)")
    args = parser.parse_args()
    total = 40_000 if args.quick else 120_000
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "ingest": [], "read": []}
    with tempfile.TemporaryDirectory() as tmp, running_monitor(Path(tmp)) as monitor:
        pid = monitor.popen.pid
        # Records are stored only for a registered version: the trained model (make train)
        # under the bench's version name; records carry the predictor token.
        import bentoml

        from bentos.packaging import registration_from_bento_model

        register_as(
            monitor,
            registration_from_bento_model(bentoml.models.get("rain_forecast:latest")),
            "v-bench",
        )
        auth = monitor.headers("predictor")
        ingest(monitor.url, 2, 10_000, pid, auth)  # warm-up (imports, first pages)
        for senders in (1, 2, 4):
            row = ingest(monitor.url, senders, total, pid, auth)
            results["ingest"].append(row)
            print(
                f"ingest  senders={senders}  {row['records']:>7,} records"
                f"  {row['seconds']:>6.2f}s  {row['records_per_second']:>7,} records/s"
                f"  ({row['records_per_server_cpu_second']:,} per server CPU-s,"
                f" load {row['load_average_1m']})  errors={row['errors']}"
            )
    for row in read_speed(sizes):
        results["read"].append(row)
        print(
            f"read    {row['rows']:>9,} rows  {row['seconds']:>6.2f}s"
            f"  {row['rows_per_second']:>8,} rows/s  peak RSS {row['peak_rss_mib']} MiB"
            f" (before the read {row['rss_before_read_mib']} MiB)"
        )
    best = max(r["records_per_second"] for r in results["ingest"])
    results["targets"] = {
        "ingest_records_per_second": {"target": 20_000, "best": best, "met": best >= 20_000},
        "read_rows_per_second": {
            "target": 100_000,
            "worst": min(r["rows_per_second"] for r in results["read"]),
        },
    }
    out = REPO / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
