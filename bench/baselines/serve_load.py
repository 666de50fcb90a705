"""Request bodies from real replay rows, and `wrk` runs that return numbers, not text.

Bodies are written one per line to a file that `post.lua` cycles through, so every request
carries different real 2013 H2 rows (only rows the schema accepts: the benchmark measures
serving, not refusals). The MLServer bodies carry the same rows as an Open Inference
Protocol FP32 tensor in schema order (null = missing, which numpy turns into NaN).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from contract.schema import ModelSchema

LUA_SCRIPT = Path(__file__).resolve().parent / "post.lua"
PAYLOAD_ROWS = {"single": 1, "batch100": 100}


def replay_records(schema: ModelSchema, limit: int) -> list[dict[str, Any]]:
    """The first `limit` valid replay rows (Jul-Dec 2013) as request records."""
    from bentos.training.data import load_weather, records, time_split

    replay = time_split(load_weather(), schema).replay
    replay = replay.loc[schema.valid_rows(replay)].head(limit)
    return records(replay, schema)


def _v2_row(record: dict[str, Any], schema: ModelSchema) -> list[float | None]:
    row: list[float | None] = []
    for feat in schema.features:
        value = record[feat.name]
        if feat.dtype == "category":
            value = (feat.categories or []).index(value) if value is not None else None
        row.append(None if value is None else float(value))
    return row


def body_for(records: list[dict[str, Any]], schema: ModelSchema, protocol: str) -> str:
    if protocol == "records":
        return json.dumps({"records": records}, allow_nan=False)
    rows = [_v2_row(r, schema) for r in records]
    tensor = {
        "name": "input-0",
        "shape": [len(rows), len(schema.features)],
        "datatype": "FP32",
        "data": [v for row in rows for v in row],
    }
    return json.dumps({"inputs": [tensor]}, allow_nan=False)


def write_bodies(
    records: list[dict[str, Any]],
    schema: ModelSchema,
    protocol: str,
    rows_per_body: int,
    path: Path,
    max_bodies: int = 200,
) -> Path:
    """One body per line, consecutive slices of the replay rows."""
    count = max(1, min(max_bodies, len(records) // rows_per_body))
    with path.open("w") as out:
        for i in range(count):
            chunk = records[i * rows_per_body : (i + 1) * rows_per_body]
            out.write(body_for(chunk, schema, protocol) + "\n")
    return path


@dataclass(frozen=True)
class WrkResult:
    """One measured run. Latencies in milliseconds, as wrk measured them."""

    requests: int
    seconds: float
    req_per_s: float
    rows_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    server_cpu_ms_per_req: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_wrk(stdout: str, rows_per_request: int) -> WrkResult:
    """Read the `WRKJSON {...}` line that post.lua's `done()` prints."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no WRKJSON line:\n{stdout}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds = raw["duration_us"] / 1e6
    req_per_s = raw["requests"] / seconds if seconds > 0 else math.nan
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return WrkResult(
        requests=raw["requests"],
        seconds=round(seconds, 3),
        req_per_s=round(req_per_s, 1),
        rows_per_s=round(req_per_s * rows_per_request, 1),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=errors,
        non_2xx=raw["status_errors"],
    )


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk not on PATH (Debian: apt-get install wrk; or `make install`)")
    return found


def run_wrk(
    url: str,
    body_file: Path,
    connections: int,
    seconds: float,
    rows_per_request: int,
    server_pid: int | None = None,
) -> WrkResult:
    """One wrk run with a single client thread (the client shares the 2 cores too).

    With `server_pid`, also the server's CPU time per request over the run.
    """
    from serve_servers import cpu_seconds

    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    argv = [wrk_path(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--timeout", "10s", "-s", str(LUA_SCRIPT), url]
    env = os.environ | {"WRK_BODY_FILE": str(body_file)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    result = parse_wrk(done.stdout, rows_per_request)
    if server_pid and result.requests:
        cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / result.requests
        result = replace(result, server_cpu_ms_per_req=round(cpu_ms, 3))
    return result
