"""Disk per million records, and that retention bounds it: `python bench/retention_disk.py`.

Fills a fresh database in-process with `--rows` realistic records (10 weather features, uuid
ids, a label for each), checkpoints the WAL and reports file bytes per record (x 1e6 = per
million). Then expires them all (`Store.expire`, batches of 5,000), ingests the same number
again and reports the file size: freed pages are reused, so it stays near the first size.
Writes bench/results/retention_disk.json. About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ingest_bench import record  # noqa: E402  (the same synthetic record)
from monitor.store.sqlite import SqliteStore  # noqa: E402


def fill(store: SqliteStore, rows: int) -> None:
    for _ in range(0, rows, 5_000):
        batch = [record() for _ in range(5_000)]
        store.append_records(batch)
        store.append_labels([{"prediction_id": b["prediction_id"], "label": 0} for b in batch])


def size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/retention_disk.json")
    args = parser.parse_args()
    random.seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "monitor.db"
        with SqliteStore(path) as store:
            fill(store, args.rows)
            first = size(path)
            t0 = time.time_ns() // 1000
            store.expire(3600, now_us=t0)  # marks the arrival clock
            started = time.perf_counter()
            done = store.expire(3600, now_us=t0 + 3601 * 1_000_000)
            seconds = time.perf_counter() - started
            fill(store, args.rows)
            second = size(path)
    result = {
        "command": "python bench/retention_disk.py",
        "rows": args.rows,
        "labelled": "every record",
        "file_bytes": first,
        "bytes_per_record": round(first / args.rows, 1),
        "mib_per_million_records": round(first / args.rows * 1e6 / 2**20),
        "expired_records": done.records,
        "expire_seconds": round(seconds, 2),
        "expire_batches": done.batches,
        "file_bytes_after_expire_and_refill": second,
        "growth_after_refill": round(second / first, 3),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
