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


if os.environ.get("BENCH_PATCH_TIMEOUT") == "1":
    # The fix the shipped service applies itself (bentos/bentoml_patches.py), for the
    # services that do not: the stock baseline and the knob experiments.
    from bentos.bentoml_patches import patch_timeout_middleware

    patch_timeout_middleware()
