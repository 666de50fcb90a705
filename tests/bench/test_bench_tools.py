"""The serving benchmark's own parts: wrk output, the ratios it reports, the baselines' input."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import numpy as np

from bentos.training.data import Split, records
from contract.schema import ModelSchema
from tests.support.paths import REPO

BENCH = REPO / "bench"


def load(relative: str) -> Any:
    """Bench scripts are files, not a package (they run as `python bench/...`): load by path."""
    path = BENCH / relative
    spec = importlib.util.spec_from_file_location(f"benchtool_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_wrk_json_line_becomes_rates_and_milliseconds() -> None:
    raw = {
        "duration_us": 10_000_000,
        "requests": 12_000,
        "p50_us": 800,
        "p90_us": 1500,
        "p99_us": 3400,
        "max_us": 9000,
        "connect_errors": 0,
        "read_errors": 1,
        "write_errors": 0,
        "timeouts": 2,
        "status_errors": 3,
    }
    result = load("baselines/serve_load.py").parse_wrk(
        f"Running 10s test\nWRKJSON {json.dumps(raw)}\n", rows_per_request=100
    )
    assert (result.req_per_s, result.rows_per_s) == (1200.0, 120_000.0)
    assert (result.p50_ms, result.p99_ms) == (0.8, 3.4)
    assert (result.errors, result.non_2xx) == (3, 3)


def test_the_baselines_build_the_same_matrix_as_the_schema(
    split: Split, schema: ModelSchema
) -> None:
    rows = split.replay.head(2000)
    got = load("baselines/serve_scoring.py").matrix(records(rows, schema), schema)
    assert np.array_equal(got, schema.to_matrix(rows), equal_nan=True)


def test_scorecard_compares_the_same_run_and_flags_each_target() -> None:
    scorecard = load("serve_bench.py").scorecard

    def row(
        server: str, payload: str, rps: float, cpu: float, p99: float = 10.0
    ) -> dict[str, object]:
        rows = 100 if payload == "batch100" else 1
        return {
            "server": server,
            "payload": payload,
            "connections": 32,
            "req_per_s": rps,
            "rows_per_s": rps * rows,
            "p99_ms": p99,
            "server_cpu_ms_per_req": cpu,
        }

    measured = [
        row("shipped", "single", 2000, 0.9, p99=30),
        row("shipped_noship", "single", 2100, 0.8),
        row("shipped", "batch100", 500, 2.0),
        row("shipped_explain", "batch100", 100, 9.0),
        row("bare", "single", 1600, 0.75, p99=20),
        row("bare", "batch100", 600, 2.0),
        row("mlserver", "single", 800, 2.0),
    ]
    card = {c["what"]: c for c in scorecard(measured)}
    assert card["cores busy, shipped, single c=32"]["value"] == 1.8
    assert card["cores busy, shipped, single c=32"]["met"] is True
    assert card["CPU/req vs bare, shipped, single c=32"]["value"] == 1.2
    assert card["CPU/req vs bare, shipped, single c=32"]["met"] is False
    assert card["record shipping's share of shipped CPU/req, single"]["value"] == 0.111
    assert card["p99 vs bare, shipped, single c=32"]["value"] == 1.5
    assert card["req/s vs MLServer, single c=32"]["met"] is True  # 2.5x
    assert card["CPU/req explain on / off, batch100 c=32"]["value"] == 4.5
    assert card["CPU/req explain on / off, batch100 c=32"]["met"] is False
    # Not measured in this run: no value, no verdict.
    assert card["rows/s vs MLServer, batch100 c=32"]["value"] is None
    assert card["rows/s vs MLServer, batch100 c=32"]["met"] is None
