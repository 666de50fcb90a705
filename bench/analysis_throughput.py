"""Analysis throughput: versions analysed per minute, 1 vs 2 worker processes, 1 vs 2 replicas.

N models (default 20) of the same shape, each its own name and 2 chunks of 500 replay rows,
on a throwaway PostgreSQL database per configuration (`tests.support.postgres`). Every
version starts cold (no fitted calculators), as after a restart. A configuration runs the
real analysis loop's pass (`monitor.loops.dispatch.AnalysisDispatcher` over
`monitor.loops.worker.AnalysisWorker`'s processes) until every version has its chunks:

- `1-replica-1-worker`, `1-replica-2-workers`: one replica, 1 or 2 worker processes;
- `2-replicas-1-worker`: two replica processes on one database, each its share of the models
  (per-model leases, `monitor/store/sharing.py`), one worker process each.

The machine is shared: the configurations run interleaved (`--rounds`, the order reversed
every other round), each with the load average at its start; read the ratios of the medians
to the one-worker baseline of the same run, not the absolute rates.
Run: `.venv/bin/python bench/analysis_throughput.py` (a few minutes; `--models 10` for less).
Writes bench/results/analysis_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
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

RESULTS = ROOT / "bench" / "results" / "analysis_throughput.json"
CHUNK, CHUNKS = 500, 2
LEASE_SECONDS = 6.0


def settings_for(url: str, workers: int) -> Any:
    from monitor.core.settings import MonitorSettings

    return MonitorSettings.model_validate(
        {
            "store": {"database_url": url},
            "operator": {"enabled": False},
            "analysis": {"chunk_size": CHUNK, "workers": workers, "lease_seconds": LEASE_SECONDS},
        }
    )


def prepare(url: str, regs_path: Path, models: int) -> None:
    """Register the good release under `models` names, each with CHUNKS chunks of rows."""
    from bench.analysis_scaling import rows_of
    from contract.registration import Registration
    from monitor.analysis.chunks import FittedVersion
    from monitor.store import open_store

    reg = Registration.model_validate(json.loads(regs_path.read_text()))
    frame = rows_of(CHUNK * CHUNKS, FittedVersion.fit(reg, CHUNK))
    names = reg.schema.feature_names
    features = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
    with open_store(settings_for(url, 1).store) as store:
        for m in range(models):
            model = f"m{m:02d}"
            store.register(reg.model_copy(update={"model": model}))
            store.append_records(
                [
                    {
                        "prediction_id": f"{model}-{i}",
                        "model": model,
                        "version": reg.version,
                        "timestamp": ts.isoformat(),
                        "features": f,
                        "probability": float(p),
                        "predicted_class": int(c),
                    }
                    for i, (ts, f, p, c) in enumerate(
                        zip(
                            frame["timestamp"],
                            features,
                            frame["probability"],
                            frame["predicted_class"],
                            strict=True,
                        )
                    )
                ]
            )


def replica(url: str, workers: int, identity: str, go: Path, models: int) -> dict[str, Any]:
    """One replica's analysis loop until every model's version has its chunks."""
    from monitor.loops.dispatch import AnalysisDispatcher
    from monitor.loops.worker import AnalysisWorker
    from monitor.metrics.registry import MonitorMetrics
    from monitor.store import open_store

    settings = settings_for(url, workers)
    sink = MonitorMetrics()
    worker = AnalysisWorker(settings, sink, workers)
    with open_store(settings.store) as store:
        dispatch = AnalysisDispatcher(
            store,
            worker,
            dict,
            sink,
            identity=identity,
            chunk_size=CHUNK,
            lease_seconds=LEASE_SECONDS,
        )
        for slot in range(workers):  # processes spawned and imported before the clock
            worker.unit(slot, "none", "none", dispatch.default)
        dispatch.start()  # live (and renewing) before the start: the share is half
        (go.parent / f"ready-{identity}").touch()
        while not go.exists():
            time.sleep(0.05)
        started = time.perf_counter()
        served = 0
        order: list[str] = []
        while True:
            dispatch()
            served += len(dispatch.served)
            order.extend(f"{m}@{time.perf_counter() - started:.1f}" for m, _ in dispatch.served)
            done = sum(1 for v in store.versions() if store.chunks(v.model, v.version))
            if done >= models:
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        dispatch.close()
    worker.close()
    return {"identity": identity, "seconds": seconds, "units": served, "served": order}


def run_config(
    cluster: Any, regs: Path, models: int, replicas: int, workers: int
) -> dict[str, Any]:
    url = cluster.create_database()
    prepare(url, regs, models)
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        children = [
            subprocess.Popen(
                [
                    *(sys.executable, __file__, "--replica", url, str(workers), f"r{r}", str(go)),
                    *("--models", str(models)),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for r in range(replicas)
        ]
        while len(list(Path(tmp).glob("ready-*"))) < replicas:  # workers spawned, imported
            time.sleep(0.1)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        go.touch()
        outs = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in children]
        wall = time.perf_counter() - started
    return {
        "replicas": replicas,
        "workers_per_replica": workers,
        "models": models,
        "seconds": round(wall, 2),
        "versions_per_minute": round(models / wall * 60, 2),
        "load_average_1m_at_start": round(load, 2),
        "per_replica": outs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replica", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        url, workers, identity, go = args.replica
        print(json.dumps(replica(url, int(workers), identity, Path(go), args.models)))
        return

    from bench.replay_accuracy import registration_of
    from bentos.training.data import load_weather, time_split, weather_schema
    from bentos.training.train import RELEASES, train_release
    from tests.support.postgres import running_cluster

    schema = weather_schema()
    split = time_split(load_weather(), schema)
    reg = registration_of(train_release(RELEASES["good"], split, schema), schema)
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp, running_cluster() as cluster:
        regs = Path(tmp) / "good.json"
        regs.write_text(json.dumps(reg.model_dump(by_alias=True, mode="json")))
        configs = [
            ("1-replica-1-worker", 1, 1),
            ("1-replica-2-workers", 1, 2),
            ("2-replicas-1-worker", 2, 1),
        ]
        for r in range(args.rounds):  # interleaved, the order reversed every other round
            for name, replicas, workers in configs if r % 2 == 0 else configs[::-1]:
                res = run_config(cluster, regs, args.models, replicas, workers)
                results.setdefault(name, []).append(res)
                print(name, res["seconds"], "s", res["versions_per_minute"], "/min")

    def median(name: str) -> float:
        return statistics.median(r["versions_per_minute"] for r in results[name])

    base = median("1-replica-1-worker")
    out = {
        "command": f"python bench/analysis_throughput.py --models {args.models}"
        f" --rounds {args.rounds}",
        "chunk_size": CHUNK,
        "chunks_per_version": CHUNKS,
        "cpus": len(os.sched_getaffinity(0)),
        "note": "shared 2-core machine (other jobs ran): compare the ratios of this one run",
        "results": results,
        "median_versions_per_minute": {k: median(k) for k in results},
        "ratios_to_1_worker": {k: round(median(k) / base, 2) for k in results},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    print(json.dumps(out["ratios_to_1_worker"]), f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
