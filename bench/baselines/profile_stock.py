"""py-spy profile of a BentoML service under wrk load, summarised by where the time goes.

Starts the stock service (or the shipped one with `--shipped`), drives it with wrk
(single-record bodies, c=32), records all its processes with `py-spy record
--subprocesses` and attributes every on-CPU sample to one bucket: the frame that costs
it (leaf frame's library), except that samples under BentoML's per-response output-schema
computation (`IOMixin.mime_type`) or the booster are charged to those whatever the leaf.

    .venv/bin/python bench/baselines/profile_stock.py --label stock
    .venv/bin/python bench/baselines/profile_stock.py --label tuned --endpoint predict_raw \
        --env BENCH_ACCESS_LOG=0 --env BENCH_TRACING_EXCLUDED_URLS=predict --env BENCH_GC_FREEZE=1
    .venv/bin/python bench/baselines/profile_stock.py --label shipped-22 --shipped --ship
Appends to bench/results/serve_profile.json; needs py-spy in .venv (pip install py-spy).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
import serve_load  # noqa: E402
import serve_scoring  # noqa: E402
import serve_servers  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "serve_profile.json"
IDLE_LEAVES = ("EpollSelector.select", "Condition.wait", "Queue.get", "Thread.join", "sleep")
# (bucket, substring of any frame in the stack): checked first, in order.
STACK_BUCKETS = [
    ("output JSON schema per response (IOMixin.mime_type)", "IOMixin.mime_type"),
    ("xgboost inplace_predict", "Booster.inplace_predict"),
]
# (bucket, path marker): the first non-stdlib frame from the leaf up decides, so time in
# stdlib helpers (enum, uuid, logging, contextlib) is charged to the library calling them.
LIBRARY_BUCKETS = [
    ("OpenTelemetry middleware", "/opentelemetry/"),
    ("access log middleware", "/bentoml/_internal/server/http/access.py"),
    ("metrics middleware (prometheus)", "/bentoml/_internal/server/http/instruments.py"),
    ("metrics middleware (prometheus)", "/prometheus_client/"),
    ("pydantic (validation, serialisation)", "/pydantic"),
    ("uvicorn + h11 (HTTP)", "/uvicorn/"),
    ("uvicorn + h11 (HTTP)", "/h11/"),
    ("starlette", "/starlette/"),
    ("thread-pool hand-off (anyio)", "/anyio/"),
    ("BentoML request path", "/_bentoml_impl/"),
    ("BentoML request path", "/_bentoml_sdk/"),
    ("BentoML request path", "/bentoml/"),
    ("numpy", "/numpy/"),
    ("record shipping (thread: records, JSON, POST)", "/bentos/shipping.py"),
    ("record shipping (thread: records, JSON, POST)", "/httpx/"),
    ("record shipping (thread: records, JSON, POST)", "/httpcore/"),
    ("service code", "/bench/baselines/"),
    ("service code", "/bentos/"),
]
EVENT_LOOP = ("/asyncio/", "/selectors.py", "/socket.py", "/threading.py", "/queue.py")


def _path(frame: str) -> str:
    return frame.rpartition(" (")[2]


def bucket_of(frames: list[str]) -> str | None:
    """One bucket per on-CPU sample; None for idle samples (waiting in epoll, locks)."""
    if any(frames[-1].startswith(idle) for idle in IDLE_LEAVES):
        return None
    for name, marker in STACK_BUCKETS:
        if any(marker in f for f in frames):
            return name
    for frame in reversed(frames):
        path = _path(frame)
        for name, marker in LIBRARY_BUCKETS:
            if marker in path:
                return name
        if any(marker in path for marker in EVENT_LOOP):
            return "asyncio event loop, sockets, threads"
    return "other"


def summarise(raw_file: Path) -> dict[str, Any]:
    """Share of on-CPU samples per bucket, from py-spy's raw (collapsed stack) output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw_file.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not any("worker.service" in f for f in frames[:2]):
            continue  # py-spy names the processes (arbiter;worker) first: keep workers
        bucket = bucket_of(frames)
        if bucket is not None:
            counts[bucket] += int(n)
    total = sum(counts.values())
    return {
        "on_cpu_samples": total,
        "share": {k: round(v / total, 3) for k, v in counts.most_common()} if total else {},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", required=True)
    ap.add_argument("--shipped", action="store_true", help="profile bentos/service.py instead")
    ap.add_argument("--endpoint", default="predict")
    ap.add_argument("--ship", action="store_true", help="shipped: ship records to a sink")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rows", type=int, default=1, help="records per request body")
    ap.add_argument(
        "--model-tag", default=os.environ.get("PREDICTOR_MODEL_TAG", "rain_forecast:latest")
    )
    ap.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", "var/bentoml"))
    args = ap.parse_args()
    home = str(Path(args.bentoml_home).resolve())
    os.environ.update(serve_servers.QUIET_ENV)
    extra = dict(kv.split("=", 1) for kv in args.env)
    if args.ship:
        extra["PREDICTOR_MONITOR_URL"] = serve_servers.RecordSink().url
    if args.shipped:
        spec = serve_servers.shipped_spec(home, args.model_tag, 2, extra)
    else:
        spec = serve_servers.stock_spec(home, args.model_tag, 2, extra, args.endpoint)
    model = serve_scoring.load(args.model_tag, home)
    records = serve_load.replay_records(model.schema, limit=1000)
    with tempfile.TemporaryDirectory(prefix="serve-profile-") as tmp:
        bodies = serve_load.write_bodies(
            records, model.schema, "records", args.rows, Path(tmp) / "b.jsonl"
        )
        raw = Path(tmp) / "profile.txt"
        with serve_servers.running(spec, Path(tmp) / "logs"):
            url = f"http://127.0.0.1:{spec.port}{spec.predict_path}"
            serve_load.run_wrk(url, bodies, args.connections, 2, args.rows)
            result: dict[str, Any] = {}

            def load() -> None:
                res = serve_load.run_wrk(
                    url, bodies, args.connections, args.seconds + 2, args.rows, spec.pid
                )
                result["wrk"] = res.as_dict()

            loader = threading.Thread(target=load)
            loader.start()
            py_spy = Path(sys.executable).parent / "py-spy"
            subprocess.run(
                [str(py_spy), "record", "--subprocesses", "--nonblocking", "--full-filenames",
                 "-p", str(spec.pid),
                 "-d", str(args.seconds), "-r", "200", "-f", "raw", "-o", str(raw)],
                check=True, capture_output=True,
            )  # fmt: skip
            loader.join()
        summary = {"label": args.label, "env": extra, "endpoint": args.endpoint}
        summary["rows_per_request"] = args.rows
        summary["load_average"] = list(os.getloadavg())
        summary |= summarise(raw) | result
    print(json.dumps(summary, indent=2))
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    existing = [e for e in existing if e.get("label") != args.label] + [summary]
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
