"""Many models on one monitor (issue 24): N = 10, 50, 200 same-shaped models, each with its
own data, on SQLite and on PostgreSQL with 1 and 2 replicas.

The good release's booster is trained once and registered under N model names; model i's
records are its own slice of the 2013 replay rows (wrapping round), scored by that booster,
every one labelled. Per (store, N), bench/scale_run.py measures: registration time, ingest
rec/s (1 and 4 senders), analysis lag after the last label, /metrics series and scrape time,
a reconcile pass over every model, idle CPU, steady-state lag and CPU per chunk, and the peak
RSS of all monitor processes. Results are merged into bench/results/scale.json by (store,
replicas, N), with the command and the machine's load.

    python bench/scale_bench.py              # everything (make bench-scale)
    python bench/scale_bench.py --quick      # N=10, SQLite, short steady phase
    python bench/scale_bench.py --models 50 --stores sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

from bench import scale_probe, scale_run  # noqa: E402

RESULTS = REPO / "bench" / "results" / "scale.json"
STORES = {"sqlite": ("sqlite", 1), "pg1": ("postgresql", 1), "pg2": ("postgresql", 2)}


def trained(workdir: Path) -> tuple[Any, Any]:
    """(Registration, Split): the good release trained once in a private BentoML home."""
    os.environ["BENTOML_HOME"] = str(workdir / "bentoml")
    import bentoml

    from bentos.packaging import registration_from_bento_model
    from bentos.training.data import load_weather, time_split, weather_schema
    from bentos.training.train import RELEASES, save_to_store, train_release

    schema = weather_schema()
    split = time_split(load_weather(), schema)
    tag = save_to_store(train_release(RELEASES["good"], split, schema), schema)
    return registration_from_bento_model(bentoml.models.get(tag)), split


def model_data(reg: Any, split: Any, n: int, rows: int) -> dict[str, tuple[list, list]]:
    """model name -> (records, labels): model i scores its own slice of the replay rows."""
    from tests.support.records import served  # the tests' record builder, not a fixture

    base, labels = served(split, reg, 0, 10**9, "all")  # every valid replay row, scored once
    out = {}
    for i in range(n):
        name = f"model-{i:03d}"
        start = (i * rows) % max(1, len(base) - rows)
        recs = [
            {**r, "model": name, "prediction_id": f"{name}-{j}"}
            for j, r in enumerate(base[start : start + rows])
        ]
        labs = [
            {"prediction_id": f"{name}-{j}", "label": lab["label"]}
            for j, lab in enumerate(labels[start : start + rows])
        ]
        out[name] = (recs, labs)
    return out


def merge(rows: list[dict[str, Any]], command: str) -> None:
    """Into scale.json, replacing earlier rows of the same (store, replicas, models)."""
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    key = lambda r: (r["store"], r["replicas"], r["models"])  # noqa: E731
    fresh = {key(r) for r in rows}
    runs = [r for r in old.get("runs", []) if key(r) not in fresh] + rows
    runs.sort(key=key)
    out = {
        "what": "bench/scale_bench.py: N same-shaped models on one monitor (issue 24)",
        "runs": runs,
        "last_command": command,
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N=10, SQLite, 20 s steady phase")
    parser.add_argument("--models", default="10,50,200")
    parser.add_argument("--stores", default="sqlite,pg1,pg2", help="of sqlite, pg1, pg2")
    parser.add_argument("--rows-per-model", type=int, default=1000)
    parser.add_argument("--steady-rate", type=float, default=20_000)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    if args.quick:
        args.models, args.stores, args.steady_seconds = "10", "sqlite", 20
    sizes = [int(n) for n in args.models.split(",")]
    stores = args.stores.split(",")
    bad = [s for s in stores if s not in STORES]
    if bad:
        parser.error(f"--stores: unknown {bad}; choose from {sorted(STORES)}")
    command = "python bench/scale_bench.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        reg, split = trained(Path(tmp))
        body = reg.model_dump(by_alias=True, mode="json")
        for n in sizes:
            data = model_data(reg, split, n, args.rows_per_model)
            for name in stores:
                store, replicas = STORES[name]
                t0, at_start = time.monotonic(), scale_probe.machine()
                row = run_one(Path(tmp) / f"{name}-{n}", store, replicas, data, body, args)
                row["command"], row["wall_seconds"] = command, round(time.monotonic() - t0)
                row["machine_at_start"] = at_start
                merge([row], command)
                print(json.dumps(row, indent=2), flush=True)


def run_one(
    workdir: Path, store: str, replicas: int, data: Any, body: Any, args: Any
) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    knobs = {
        "steady_rate": args.steady_rate,
        "steady_seconds": args.steady_seconds,
        "idle_seconds": args.idle_seconds,
    }
    if store == "sqlite":
        return scale_run.run(workdir, store, data, body, replicas=replicas, **knobs)
    from tests.support.postgres import running_cluster  # the tests' throwaway server

    with running_cluster() as cluster:
        url = cluster.create_database()
        return scale_run.run(
            workdir, store, data, body, database_url=url, replicas=replicas, **knobs
        )


if __name__ == "__main__":
    main()
