"""Measure BentoML's knobs one at a time on the stock service (docs/performance.md).

Each experiment starts `bento_stock` with some BENCH_* / BentoML settings, runs wrk with
single-record bodies at c=1 and c=32 (and 100-record bodies at c=32), then stops it. The
bare Starlette app is measured first and last, so every experiment has a same-run
reference on this noisy shared machine. Slow GC pauses seen in the server log are counted.

    .venv/bin/python bench/baselines/knobs.py [--seconds 5] [--only name,name]
Writes bench/results/serve_knobs.json.
"""

from __future__ import annotations

import argparse
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

RESULTS = Path(__file__).resolve().parents[1] / "results"
LOGS = Path(tempfile.gettempdir()) / "serve-knobs-logs"
QUIET = {"BENCH_ACCESS_LOG": "0", "BENCH_METRICS": "0", "BENCH_TRACING_EXCLUDED_URLS": "predict"}

# name -> (endpoint, env). Endpoint: predict (def), predict_async, predict_raw.
EXPERIMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "stock": ("predict", {}),
    "async": ("predict_async", {}),
    "threads4": ("predict", {"BENCH_THREADS": "4"}),
    "max_concurrency32": ("predict", {"BENCH_MAX_CONCURRENCY": "32"}),
    "workers1": ("predict", {"BENCH_WORKERS": "1"}),
    "no_access_log": ("predict", {"BENCH_ACCESS_LOG": "0"}),
    "no_metrics": ("predict", {"BENCH_METRICS": "0"}),
    "otel_excluded": ("predict", {"BENCH_TRACING_EXCLUDED_URLS": "predict"}),
    "otel_sdk_disabled": ("predict", {"OTEL_SDK_DISABLED": "true"}),
    "gc_freeze": ("predict", {"BENCH_GC_FREEZE": "1"}),
    "gc_gen0_50k": ("predict", {"BENCH_GC_GEN0": "50000"}),
    "gc_freeze_gen0_50k": ("predict", {"BENCH_GC_FREEZE": "1", "BENCH_GC_GEN0": "50000"}),
    "raw_response": ("predict_raw", {}),
    "raw_quiet": ("predict_raw", QUIET),
    "raw_quiet_gc": ("predict_raw", QUIET | {"BENCH_GC_FREEZE": "1", "BENCH_GC_GEN0": "50000"}),
}
# Experiments on the shipped service (bentos/service.py), settings applied from outside:
# BentoML config overrides and the GC hook (gc_hook/sitecustomize.py).
SHIPPED_CONFIG = (
    "services.modelguard_predictor.logging.access.enabled=false "
    "services.modelguard_predictor.tracing.excluded_urls=/predict,/predict_batch,/livez,/readyz,/metrics"
)
SHIPPED_GC = {"BENCH_GC_GEN0": "50000", "BENCH_GC_FREEZE_AFTER": "20"}
SHIPPED_EXPERIMENTS: dict[str, dict[str, str]] = {
    "shipped": {"BENCH_GC_LOG": "1"},
    "shipped_gc": SHIPPED_GC | {"BENCH_GC_LOG": "1"},
    "shipped_config": {"BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG, "BENCH_GC_LOG": "1"},
    "shipped_tuned": SHIPPED_GC | {"BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG, "BENCH_GC_LOG": "1"},
    "shipped_config_timeout10": {
        "BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG
        + " services.modelguard_predictor.traffic.timeout=10",
        "BENCH_GC_LOG": "1",
    },
    "shipped_config_patched": {
        "BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG,
        "BENCH_PATCH_TIMEOUT": "1",
        "BENCH_GC_LOG": "1",
    },
    "shipped_config_patched_freeze": {
        "BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG,
        "BENCH_PATCH_TIMEOUT": "1",
        "BENCH_GC_FREEZE_AFTER": "8",
        "BENCH_GC_LOG": "1",
    },
    "shipped_patched": {"BENCH_PATCH_TIMEOUT": "1", "BENCH_GC_LOG": "1"},
    "shipped_config_freeze": {
        "BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG,
        "BENCH_GC_FREEZE_AFTER": "20",
        "BENCH_GC_LOG": "1",
    },
    "shipped_config_freeze_gen0_5k": {
        "BENTOML_CONFIG_OPTIONS": SHIPPED_CONFIG,
        "BENCH_GC_FREEZE_AFTER": "20",
        "BENCH_GC_GEN0": "5000",
        "BENCH_GC_LOG": "1",
    },
}
LOADS = [("single", 1), ("single", 32), ("batch100", 32)]


def measure(url: str, bodies: dict[str, Path], seconds: float, pid: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for payload, conns in LOADS:
        rows = serve_load.PAYLOAD_ROWS[payload]
        serve_load.run_wrk(url, bodies[payload], conns, 1.0, rows)
        res = serve_load.run_wrk(url, bodies[payload], conns, seconds, rows, pid)
        out[f"{payload}_c{conns}"] = res.as_dict()
    return out


def summary(r: dict[str, Any]) -> str:
    c1, c32, b100 = r["single_c1"], r["single_c32"], r["batch100_c32"]
    return (
        f"c1 p50 {c1['p50_ms']:6.2f} p99 {c1['p99_ms']:7.2f}"
        f" | c32 {c32['req_per_s']:7.1f} req/s p99 {c32['p99_ms']:7.2f}"
        f" cpu {c32['server_cpu_ms_per_req']:5.2f} ms/req"
        f" | b100 c32 {b100['rows_per_s']:8.0f} rows/s p99 {b100['p99_ms']:7.2f}"
        f" cpu {b100['server_cpu_ms_per_req']:5.2f} ms/req | gc {r['gc']}"
    )


def gc_pauses(log: Path | None) -> dict[str, float]:
    """Count the GCPAUSE lines (pauses > 2 ms) printed with BENCH_GC_LOG=1, per generation."""
    if log is None or not log.exists():
        return {}
    out: dict[str, float] = {}
    for gen in "012":
        found = re.findall(rf"GCPAUSE gen={gen} ms=([0-9.]+)", log.read_text())
        pauses = [float(ms) for ms in found]
        out[f"gen{gen}_pauses"] = len(pauses)
        out[f"gen{gen}_max_ms"] = max(pauses, default=0.0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--only", default=",".join(EXPERIMENTS))
    ap.add_argument(
        "--model-tag", default=os.environ.get("PREDICTOR_MODEL_TAG", "rain_forecast:latest")
    )
    ap.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", "var/bentoml"))
    ap.add_argument("--output", type=Path, default=RESULTS / "serve_knobs.json")
    args = ap.parse_args()
    home = str(Path(args.bentoml_home).resolve())
    os.environ.update(serve_servers.QUIET_ENV)
    model = serve_scoring.load(args.model_tag, home)
    records = serve_load.replay_records(model.schema, limit=20_000)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="serve-knobs-") as tmp:
        bodies = {
            p: serve_load.write_bodies(
                records, model.schema, "records", n, Path(tmp) / f"{p}.jsonl"
            )
            for p, n in serve_load.PAYLOAD_ROWS.items()
        }
        names = ["bare_before", *args.only.split(","), "bare_after"]
        for name in names:
            if name.startswith("bare"):
                spec = serve_servers.bare_spec(home, args.model_tag, 2)
                env: dict[str, str] = {}
            elif name in SHIPPED_EXPERIMENTS:
                env = SHIPPED_EXPERIMENTS[name]
                spec = serve_servers.shipped_spec(home, args.model_tag, 2, env)
            else:
                endpoint, env = EXPERIMENTS[name]
                env = env | {"BENCH_GC_LOG": "1"}
                spec = serve_servers.stock_spec(home, args.model_tag, 2, env, endpoint)
            spec.name = name
            with serve_servers.running(spec, LOGS):
                url = f"http://127.0.0.1:{spec.port}{spec.predict_path}"
                results[name] = {"env": env, **measure(url, bodies, args.seconds, spec.pid)}
            results[name]["gc"] = gc_pauses(spec.log_path)
            print(name.ljust(18), summary(results[name]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"seconds": args.seconds, "results": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
