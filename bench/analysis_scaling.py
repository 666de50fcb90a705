"""Analysis cost at 10k / 100k / 1M rows: wall time and peak memory (target: 100k <= 5 s).

Each measurement runs in a fresh child process, so its peak RSS is its own:

- `analysis`: `analyse_chunks` over N replay rows (repeated to length) of the good model,
  chunks of 500, shadow-scored with the retrain -- CBPE for every chunk and slice, drift,
  reconstruction, data quality, ranking, parity, known-good CBPE;
- `cycle`: `run_cycle` on a real SQLite store already holding N records: read the window,
  analyse it, save and publish every chunk (the versions are fitted before the clock starts,
  as in the running monitor where fits are cached).

Run: `.venv/bin/python bench/analysis_scaling.py` (a few minutes; `--sizes 10000 100000`
for less). Writes bench/results/analysis_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from monitor.store import Store

RESULTS = ROOT / "bench" / "results" / "analysis_scaling.json"
CHUNK = 500


def rows_of(n: int, live: Any) -> Any:
    import numpy as np
    import pandas as pd

    from bench.replay_accuracy import replay_rows
    from bentos.training.data import load_weather, time_split, weather_schema

    schema = weather_schema()
    base = replay_rows(time_split(load_weather(), schema).replay, schema, live)
    frame = pd.concat([base] * (n // len(base) + 1), ignore_index=True).iloc[:n].copy()
    frame["seq"] = np.arange(1, n + 1)
    frame["prediction_id"] = [f"p{i}" for i in range(n)]
    return frame


def child(n: int, mode: str, registrations: Path) -> dict[str, Any]:
    from contract.registration import Registration
    from monitor.analysis.chunks import FittedVersion, analyse_chunks

    regs = {
        k: Registration.model_validate(v) for k, v in json.loads(registrations.read_text()).items()
    }
    good, retrain = (FittedVersion.fit(regs[k], CHUNK) for k in ("good", "retrain"))
    frame = rows_of(n, good)
    if mode == "analysis":
        started = time.perf_counter()
        chunks = analyse_chunks(good, frame, 0, retrain, chunk_size=CHUNK)
        seconds = time.perf_counter() - started
    else:
        seconds, chunks = _cycle(frame, regs, good, retrain)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": n,
        "mode": mode,
        "chunks": len(chunks),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "us_per_row": round(seconds / n * 1e6, 2),
    }


def _cycle(frame: Any, regs: dict[str, Any], good: Any, retrain: Any) -> tuple[float, list[Any]]:
    from monitor.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "m.db") as store:
        return cycle_on(store, frame, regs, good, retrain)


def cycle_on(
    store: Store, frame: Any, regs: dict[str, Any], good: Any, retrain: Any
) -> tuple[float, list[Any]]:
    """Seconds of one `run_cycle` over `frame`'s rows stored in `store` (an empty store of
    either backend, bench/store_backends.py), and its chunks."""
    from monitor.analysis.cycle import CycleOptions, run_cycle
    from monitor.analysis.versions import VersionCache
    from monitor.metrics.registry import MonitorMetrics

    names = good.registration.schema.feature_names
    features = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
    records = [
        {
            "prediction_id": pid,
            "model": good.registration.model,
            "version": good.registration.version,
            "timestamp": ts.isoformat(),
            "features": f,
            "probability": float(p),
            "predicted_class": int(c),
        }
        for pid, ts, f, p, c in zip(
            frame["prediction_id"],
            frame["timestamp"],
            features,
            frame["probability"],
            frame["predicted_class"],
            strict=True,
        )
    ]
    for reg in regs.values():
        store.register(reg)
    store.put_state(
        f"known_good/{good.registration.model}", {"version": retrain.registration.version}
    )
    for start in range(0, len(records), 20_000):
        store.append_records(records[start : start + 20_000])
    cache = VersionCache(store, CHUNK)
    cache._fitted[(*good.key, CHUNK)] = good  # fitted before the clock, as when cached
    cache._fitted[(*retrain.key, CHUNK)] = retrain
    started = time.perf_counter()
    chunks = run_cycle(store, CycleOptions(CHUNK), cache, MonitorMetrics())
    return time.perf_counter() - started, chunks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--cycle-max", type=int, default=100_000, help="largest size for `cycle`")
    parser.add_argument("--child", nargs=3, metavar=("N", "MODE", "REGS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, mode, regs = args.child
        print(json.dumps(child(int(n), mode, Path(regs))))
        return

    from bench.replay_accuracy import registration_of
    from bentos.training.data import load_weather, time_split, weather_schema
    from bentos.training.train import RELEASES, train_release

    schema = weather_schema()
    split = time_split(load_weather(), schema)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        regs_path = Path(tmp) / "registrations.json"
        regs = {
            k: registration_of(train_release(RELEASES[k], split, schema), schema)
            for k in ("good", "retrain")
        }
        regs_path.write_text(
            json.dumps({k: r.model_dump(by_alias=True, mode="json") for k, r in regs.items()})
        )
        header = ("mode", "rows", "chunks", "seconds", "us/row", "peak RSS MB")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (9, 9, 7, 8, 7, 12), strict=True)))
        for mode in ("analysis", "cycle"):
            for n in args.sizes:
                if mode == "cycle" and n > args.cycle_max:
                    continue
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), mode, str(regs_path)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                res = json.loads(out.stdout.strip().splitlines()[-1])
                results.append(res)
                print(
                    f"{mode:>9} {n:>9} {res['chunks']:>7} {res['seconds']:>8.2f}"
                    f" {res['us_per_row']:>7.1f} {res['peak_rss_mb']:>12.0f}"
                )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"chunk_size": CHUNK, "results": results}, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
