"""A stock BentoML 1.4 service scoring the rain booster: the profiling subject.

Written the way the BentoML docs show it (pydantic input, `@bentoml.api`, model from the
store, default server settings) so the benchmark can show what BentoML itself costs
before the shipped service's own code is involved. The knobs under test are read from
the environment so one file serves every experiment:

- `BENCH_WORKERS` (default 2), `BENCH_THREADS` (BentoML's `threads`, default unset = 1),
  `BENCH_MAX_CONCURRENCY` (`traffic.max_concurrency`, default unset),
- `BENCH_ACCESS_LOG=0`, `BENCH_METRICS=0` switch BentoML's access log / metrics
  middleware off; `BENCH_TRACING_EXCLUDED_URLS=/predict,...` makes its OpenTelemetry
  middleware pass those paths straight through,
- `BENCH_GC_FREEZE=1` moves everything alive after start-up out of the cyclic garbage
  collector's reach (`gc.freeze()`), `BENCH_GC_GEN0=<n>` raises the gen-0 threshold,
  `BENCH_GC_LOG=1` prints each collector pause over 2 ms (`GCPAUSE ...` on stderr).

Endpoints (same body `{"records": [...]}`): `/predict` (sync `def`, BentoML runs it in
its thread pool), `/predict_async` (`async def`, on the event loop) and `/predict_raw`
(`async def` returning a ready JSON `Response`: BentoML's output serialisation is skipped,
the OpenAPI document still shows `list[Prediction]`).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import bentoml
from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/baselines
import serve_scoring as scoring

MODEL_TAG = os.environ.get("PREDICTOR_MODEL_TAG", scoring.DEFAULT_TAG)
_LOADED = scoring.load(MODEL_TAG)
Record: Any = _LOADED.schema.record_model()


class Prediction(BaseModel):
    prediction_id: str
    probability: float
    predicted_class: int
    model_version: str


def _service_config() -> dict[str, Any]:
    config: dict[str, Any] = {"workers": int(os.environ.get("BENCH_WORKERS", "2"))}
    if threads := os.environ.get("BENCH_THREADS"):
        config["threads"] = int(threads)
    if max_conc := os.environ.get("BENCH_MAX_CONCURRENCY"):
        config["traffic"] = {"max_concurrency": int(max_conc)}
    if os.environ.get("BENCH_ACCESS_LOG") == "0":
        config["logging"] = {"access": {"enabled": False}}
    if os.environ.get("BENCH_METRICS") == "0":
        config["metrics"] = {"enabled": False}
    if excluded := os.environ.get("BENCH_TRACING_EXCLUDED_URLS"):
        config["tracing"] = {"excluded_urls": excluded.split(",")}
    return config


_gc_started = 0.0


def _log_slow_gc(phase: str, info: dict[str, int]) -> None:
    """Print every cyclic-GC pause over 2 ms (generation, duration, objects collected)."""
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
        return
    pause_ms = (time.perf_counter() - _gc_started) * 1000
    if pause_ms > 2:
        print(
            f"GCPAUSE gen={info['generation']} ms={pause_ms:.1f} collected={info['collected']}",
            file=sys.stderr,
            flush=True,
        )


@bentoml.service(**_service_config())
class StockRain:
    """Validate with the schema's record model, score with the store's booster."""

    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        self.model = scoring.LoadedModel(
            booster=bentoml.xgboost.load_model(self.model_ref),
            schema=_LOADED.schema,
            version=_LOADED.version,
            path=_LOADED.path,
        )
        self.model.booster.set_param({"nthread": 1})
        if gen0 := os.environ.get("BENCH_GC_GEN0"):
            gc.set_threshold(int(gen0), 10, 10)
        if os.environ.get("BENCH_GC_FREEZE") == "1":
            gc.collect()
            gc.freeze()
        if os.environ.get("BENCH_GC_LOG") == "1":
            gc.callbacks.append(_log_slow_gc)

    @bentoml.api
    def predict(self, records: list[Record]) -> list[Prediction]:
        rows = [r.model_dump() for r in records]
        return [Prediction(**p) for p in scoring.predict(self.model, rows)]

    @bentoml.api
    async def predict_async(self, records: list[Record]) -> list[Prediction]:
        rows = [r.model_dump() for r in records]
        return [Prediction(**p) for p in scoring.predict(self.model, rows)]

    @bentoml.api
    async def predict_raw(self, records: list[Record]) -> list[Prediction]:
        rows = [r.model_dump() for r in records]
        body = _PREDICTIONS.dump_json(scoring.predict(self.model, rows))
        return Response(body, media_type="application/json")  # type: ignore[return-value]


_PREDICTIONS = TypeAdapter(list[Prediction])
