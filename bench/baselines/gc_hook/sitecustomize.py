"""Apply garbage-collector settings to an unmodified server, for measuring them.

Put this folder first on PYTHONPATH and Python imports it at start-up in every process
(the BentoML arbiter and its workers alike). It lets the benchmark try the GC settings
recommended in docs/performance.md on the shipped service without editing it:

- `BENCH_GC_GEN0=<n>`: `gc.set_threshold(n, 10, 10)`; fewer young collections, so fewer
  objects of in-flight requests get promoted to the old generation.
- `BENCH_GC_FREEZE_AFTER=<seconds>`: `gc.freeze()` once, that long after start-up (after
  the model, the app and the first requests' lazy imports exist), so full collections
  stop walking the ~200k long-lived objects BentoML, pydantic and OpenTelemetry bring.
- `BENCH_GC_LOG=1`: print every collection pause over 2 ms as `GCPAUSE gen=.. ms=..` on
  stderr (the knob experiments count them).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

if gen0 := os.environ.get("BENCH_GC_GEN0"):
    gc.set_threshold(int(gen0), 10, 10)

_t0 = time.monotonic()


def _freeze() -> None:
    gc.freeze()
    if os.environ.get("BENCH_GC_LOG") == "1":
        at = time.monotonic() - _t0
        frozen = gc.get_freeze_count()
        print(f"GCFREEZE t={at:.1f} frozen={frozen} pid={os.getpid()}", file=sys.stderr, flush=True)


if after := os.environ.get("BENCH_GC_FREEZE_AFTER"):
    timer = threading.Timer(float(after), _freeze)
    timer.daemon = True
    timer.start()

_started = 0.0


def _log_slow_gc(phase: str, info: dict[str, int]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
        return
    pause_ms = (time.perf_counter() - _started) * 1000
    if pause_ms > 2:
        gen = info["generation"]
        at = time.monotonic() - _t0
        print(
            f"GCPAUSE gen={gen} ms={pause_ms:.1f} t={at:.1f} pid={os.getpid()}",
            file=sys.stderr,
            flush=True,
        )


if os.environ.get("BENCH_GC_LOG") == "1":
    gc.callbacks.append(_log_slow_gc)


_last_types: dict[str, int] = {}


def _dump_growth(signum: int, frame: object) -> None:
    """On SIGUSR1: the object types whose count grew most since the previous SIGUSR1."""
    global _last_types
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] = counts.get(name, 0) + 1
    growth = sorted(((counts[k] - _last_types.get(k, 0), k) for k in counts), reverse=True)
    top = " ".join(f"{k}:+{d}" for d, k in growth[:12])
    print(
        f"GCTYPES pid={os.getpid()} total={sum(counts.values())} {top}", file=sys.stderr, flush=True
    )
    _last_types = counts


if os.environ.get("BENCH_GC_TYPES") == "1":
    import signal

    signal.signal(signal.SIGUSR1, _dump_growth)


def _patch_bentoml_timeout() -> None:
    """BentoML 1.4's TimeoutMiddleware never cancels its per-request `call_later` timer.

    Every request then leaves a TimerHandle, its bound method, the waiter Future and a
    Context alive for `traffic.timeout` seconds (60 s default): ~1,000 req/s keep 60k
    requests' worth of objects in the old generation, which every full collection walks.
    This is the same middleware with the timer cancelled once the response has started.
    """
    import asyncio
    from typing import Any

    from bentoml._internal.server.http import traffic
    from starlette.responses import JSONResponse

    async def call_cancelling_timer(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message: Any) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
        try:
            await waiter
        except TimeoutError:
            if fut.cancel():
                body = {"error": f"Not able to process the request in {self.timeout} seconds"}
                await JSONResponse(body, status_code=504)(scope, receive, send)
        else:
            await fut
        finally:
            timer.cancel()

    traffic.TimeoutMiddleware.__call__ = call_cancelling_timer  # type: ignore[method-assign]


if os.environ.get("BENCH_PATCH_TIMEOUT") == "1":
    _patch_bentoml_timeout()
