"""What a version's fitted state costs: a fresh fit vs loading the saved one, and where a
first analysis pass spends its time before and after (py-spy).

- `fit`: `VersionCache.get` of a version no store has a saved fit of (read the registration,
  fit CBPE, drift, reconstruction, intervals, the reference's TreeSHAP reliance; save), on a
  fresh SQLite store each repeat; `fit_full_reference`: the same with the reference reliance
  over every reference row (what the monitor did before: the baseline, same run);
- `load`: `VersionCache.get` in a new cache (a restart, another replica) over a store with
  the saved fit: read, decompress, unpickle, seed the intervals;
- `resident_mb_per_cached_version`: RSS growth per fitted version held in memory;
- `reference_sampling_error`: the 1,000-row reliance against the all-rows one, per feature,
  in units of the total reliance (what an attribution shift is measured in);
- `profile` (with `--profile`, py-spy on PATH): shares of a first pass (`run_cycle` with
  nothing fitted; also with the all-rows reference reliance, the baseline), a restart's
  first pass (the fit saved by an earlier process) and a steady pass (a warm cache).

Run: `.venv/bin/python bench/fit_cache.py [--repeats 3] [--profile]` (a few minutes).
Writes bench/results/fit_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "fit_cache.json"
CHUNK = 500
MODEL = "rain_forecast"
RATE = 200  # py-spy samples per second


def registration() -> Any:
    from bench.replay_accuracy import registration_of
    from bentos.training.data import load_weather, time_split, weather_schema
    from bentos.training.train import RELEASES, train_release

    schema = weather_schema()
    split = time_split(load_weather(), schema)
    return registration_of(train_release(RELEASES["good"], split, schema), schema), split


def timed_get(store: Any, max_rows: int | None = None) -> tuple[float, Any]:
    from monitor.analysis import attribution
    from monitor.analysis.versions import VersionCache

    kept = attribution.REFERENCE_SAMPLE_ROWS
    attribution.REFERENCE_SAMPLE_ROWS = max_rows or kept
    try:
        cache = VersionCache(store, CHUNK)
        started = time.perf_counter()
        fitted = cache.get(MODEL, fitted_version(store))
        return time.perf_counter() - started, (cache, fitted)
    finally:
        attribution.REFERENCE_SAMPLE_ROWS = kept


def fitted_version(store: Any) -> str:
    return str(store.versions(MODEL)[0].version)


def measure(repeats: int, tmp: Path) -> dict[str, Any]:
    import numpy as np

    from monitor.analysis import attribution
    from monitor.store import SqliteStore

    reg, _ = registration()
    runs: dict[str, list[float]] = {"fit": [], "fit_full_reference": [], "load": []}
    state_bytes = 0
    for i in range(repeats):
        for kind, rows in (("fit", None), ("fit_full_reference", 10**9)):
            with SqliteStore(tmp / f"{kind}-{i}.db") as store:
                store.register(reg)
                seconds, (cache, _) = timed_get(store, rows)
                assert cache.fits == 1 and cache.loads == 0
                runs[kind].append(seconds)
    with SqliteStore(tmp / "fit-0.db") as store:
        for _ in range(repeats):
            seconds, (cache, fitted) = timed_get(store)
            assert cache.fits == 0 and cache.loads == 1
            runs["load"].append(seconds)
        row = store._reader().execute("SELECT length(state) FROM fitted_states").fetchall()
        state_bytes = max(int(r[0]) for r in row)
        per_version_mb = resident_per_version(store)
    schema = fitted.registration.schema
    full = attribution.reliance(fitted.booster, schema, fitted.reference)
    total = sum(full.values())
    diff = {f: abs(fitted.reference_reliance[f] - v) / total for f, v in full.items()}
    medians = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "reference_rows": len(fitted.reference),
        "reference_sample_rows": attribution.REFERENCE_SAMPLE_ROWS,
        "repeats": repeats,
        "seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "median_seconds": {k: round(v, 3) for k, v in medians.items()},
        "fit_over_load": round(medians["fit"] / medians["load"], 1),
        "full_reference_over_sampled_fit": round(medians["fit_full_reference"] / medians["fit"], 2),
        "saved_state_bytes": state_bytes,
        "resident_mb_per_cached_version": round(per_version_mb, 1),
        "reference_sampling_error": {
            "max_abs_over_total": round(max(diff.values()), 4),
            "mean_abs_over_total": round(float(np.mean(list(diff.values()))), 4),
        },
    }


def resident_per_version(store: Any, copies: int = 10) -> float:
    """RSS growth per fitted version held in memory: `copies` loads of the saved fit kept
    alive at once (distinct objects, as distinct versions in the cache would be)."""
    import gc

    import psutil

    from monitor.analysis import fitstate
    from monitor.analysis.chunks import FittedVersion

    rows = store._reader().execute("SELECT state FROM fitted_states").fetchall()
    data = max((bytes(r[0]) for r in rows), key=len)
    gc.collect()
    before = psutil.Process().memory_info().rss
    kept = [fitstate.load(data, FittedVersion) for _ in range(copies)]
    gc.collect()
    grown = psutil.Process().memory_info().rss - before
    assert all(k is not None for k in kept)
    return grown / copies / 1024**2


# ---------------------------------------------------------------- py-spy profile of passes


def pass_child(which: str, db: Path) -> None:
    """One analysis pass on `db` (prepared by `profile`, two chunks waiting): `first` with
    nothing saved; `restart` in a new process after a first pass saved the fit, on two new
    chunks; `steady` a second pass of a warm cache on two new chunks."""
    from monitor.analysis.cycle import CycleOptions, run_cycle
    from monitor.analysis.versions import VersionCache
    from monitor.metrics.registry import MonitorMetrics
    from monitor.store import SqliteStore

    if which == "first_full_reference":  # the baseline: reliance over every reference row
        from monitor.analysis import attribution

        attribution.REFERENCE_SAMPLE_ROWS = 10**9
    with SqliteStore(db) as store:
        cache = VersionCache(store, CHUNK)
        if which == "steady":
            run_cycle(store, CycleOptions(CHUNK), cache, MonitorMetrics())
        if which in ("restart", "steady"):
            _append(store, which, 2 * CHUNK)
        measured_pass(store, cache)


def measured_pass(store: Any, cache: Any) -> None:
    """The pass the profile counts (its frame marks the samples)."""
    from monitor.analysis.cycle import CycleOptions, run_cycle
    from monitor.metrics.registry import MonitorMetrics

    run_cycle(store, CycleOptions(CHUNK), cache, MonitorMetrics())


def _append(store: Any, tag: str, start: int) -> None:
    """Two chunks of replay records served by the registered version."""
    from bentos.training.data import load_weather, time_split, weather_schema
    from contract.registration import Registration
    from tests.support.records import served

    reg = Registration.model_validate_json((Path(store.location).parent / "reg.json").read_text())
    split = time_split(load_weather(), weather_schema())
    records, _ = served(split, reg, start, 2 * CHUNK, tag)
    store.append_records(records)


SHARES = {
    "treeshap (attribution.contributions)": "contributions (monitor/analysis/attribution.py",
    "cbpe fit (PerformanceEstimator.fit)": "fit (monitor/analysis/estimation.py",
    "fit (FittedVersion.fit)": "fit (monitor/analysis/chunks.py",
    "load (fitstate.load)": "load (monitor/analysis/fitstate.py",
    "analyse_chunks": "analyse_chunks (monitor/analysis/chunks.py",
}


def profile(tmp: Path) -> dict[str, Any]:
    from monitor.store import SqliteStore

    reg, _ = registration()
    out: dict[str, Any] = {}
    for which in ("first_full_reference", "first", "restart", "steady"):
        db = tmp / which / "monitor.db"
        db.parent.mkdir()
        (db.parent / "reg.json").write_text(reg.model_dump_json(by_alias=True))
        with SqliteStore(db) as store:
            store.register(reg)
            _append(store, "base", 0)
        if which == "restart":  # the fit saved by an earlier process
            subprocess.run([sys.executable, __file__, "--pass", "first", str(db)], check=True)
        raw = tmp / f"{which}.txt"
        spy = ["py-spy", "record", "-r", str(RATE), "-f", "raw", "-o", str(raw), "--"]
        subprocess.run(
            [*spy, sys.executable, __file__, "--pass", which, str(db)],
            check=True,
            capture_output=True,
        )
        out[which] = shares(raw)
    return out


def shares(raw: Path) -> dict[str, Any]:
    """Of the samples inside the measured pass, the share under each of `SHARES`."""
    total, counts = 0, dict.fromkeys(SHARES, 0)
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "measured_pass (" not in stack:
            continue
        total += int(n)
        for name, frame in SHARES.items():
            if frame in stack:
                counts[name] += int(n)
    return {
        "samples": total,
        "seconds": round(total / RATE, 2),
        **{k: round(v / total, 3) if total else 0.0 for k, v in counts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy the passes too")
    parser.add_argument("--pass", dest="which", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.which:
        pass_child(args.which[0], Path(args.which[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.repeats, Path(tmp))
        if args.profile and shutil.which("py-spy"):
            result["profile"] = profile(Path(tmp))
    result["command"] = "python bench/fit_cache.py" + (" --profile" if args.profile else "")
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
