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


def test_ratios_compare_the_same_run_and_flag_each_target() -> None:
    ratios = load("serve_bench.py").ratios

    def row(server: str, payload: str, rps: float, p99: float = 10.0) -> dict[str, object]:
        rows = 100 if payload == "batch100" else 1
        return {
            "server": server,
            "payload": payload,
            "connections": 32,
            "req_per_s": rps,
            "rows_per_s": rps * rows,
            "p99_ms": p99,
        }

    measured = [
        row("shipped", "single", 1000, p99=30),
        row("shipped", "batch100", 500),
        row("bare", "single", 1600),
        row("bare", "batch100", 600),
        row("mlserver", "single", 250),
    ]
    got = ratios(measured)["shipped"]
    assert got["vs_bare_single_c32_req_s"] == 0.625
    assert got["vs_mlserver_single_c32_req_s"] == 4.0
    assert got["meets_targets"] == {
        "vs_bare_single >= 0.5": True,
        "p99 <= 25 ms": False,
        "vs_mlserver >= 3": True,
        "vs_bare_rows >= 0.5": True,
    }
