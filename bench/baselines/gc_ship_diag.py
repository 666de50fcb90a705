"""Full garbage collections in the shipped predictor's workers, with and without shipping.

Serves 100-row bodies over one keep-alive connection for 10 s, twice: with record shipping
to a sink, and without a monitor URL; the bench's GC hook (`gc_hook/sitecustomize.py`,
`BENCH_GC_LOG=1`) logs every collection over 2 ms. Counts the workers' gen-2 collections
after start-up (the service freezes its start-up objects), and p99 of the same run.

    .venv/bin/python bench/baselines/gc_ship_diag.py
Writes bench/results/serve_gc_shipping.json.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
import serve_load  # noqa: E402
import serve_scoring  # noqa: E402
import serve_servers  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "serve_gc_shipping.json"
PAUSE = re.compile(r"GCPAUSE gen=(\d) ms=([\d.]+) t=([\d.]+) pid=(\d+)")
STARTUP_SECONDS = 6.0  # collections before this are the model and app loading


def run(
    label: str, ship: bool, home: str, tag: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    extra = {"BENCH_GC_LOG": "1"}
    if ship:
        extra["PREDICTOR_MONITOR_URL"] = serve_servers.RecordSink().url
    spec = serve_servers.shipped_spec(home, tag, 2, extra)
    spec.name = label
    model = serve_scoring.load(tag, home)
    with tempfile.TemporaryDirectory(prefix="gc-ship-") as tmp:
        bodies = serve_load.write_bodies(records, model.schema, "records", 100, Path(tmp) / "b")
        with serve_servers.running(spec, Path(tmp) / "logs"):
            url = f"http://127.0.0.1:{spec.port}{spec.predict_path}"
            serve_load.run_wrk(url, bodies, 1, 2, 100)
            result = serve_load.run_wrk(url, bodies, 1, 10, 100, spec.pid)
        text = spec.log_path.read_text() if spec.log_path else ""
    full = [
        float(ms)
        for gen, ms, at, _ in PAUSE.findall(text)
        if gen == "2" and float(at) > STARTUP_SECONDS
    ]
    return {
        "shipping": ship,
        "wrk": result.as_dict(),
        "full_collections_under_load": len(full),
        "full_collection_ms_mean": round(sum(full) / len(full), 1) if full else None,
        "full_collection_ms_max": max(full) if full else None,
    }


def main() -> int:
    home = str(Path(os.environ.get("BENTOML_HOME", "var/bentoml")).resolve())
    tag = os.environ.get("PREDICTOR_MODEL_TAG", "rain_forecast:latest")
    os.environ.update(serve_servers.QUIET_ENV)
    model = serve_scoring.load(tag, home)
    records = serve_load.replay_records(model.schema, limit=2000)
    out = {
        "command": "bench/baselines/gc_ship_diag.py",
        "load_average_start": list(os.getloadavg()),
        "runs": [run("ship", True, home, tag, records), run("noship", False, home, tag, records)],
    }
    out["load_average_end"] = list(os.getloadavg())
    print(json.dumps(out, indent=2))
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
