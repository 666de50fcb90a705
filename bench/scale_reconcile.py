"""The offline reconcile pass against the number of models, in-process (issue 24 item 1).

N models (10, 50, 200), one version each with a ~1.3 MB reference (5,000 rows of 10
features, as the weather model's), 1,000 records and six analysed chunks, in a SQLite store
built in a temp dir; an `Operator` over `offline_target` runs two passes (the first promotes
every known-good, the second scores each release gate once), then the median of three more
is the idle pass. `--code DIR` runs the same measurement against another checkout's
`monitor` (the commit before the fix: `git archive <commit> | tar -x -C DIR`), in a child
process, so both are measured in the same run on the same machine.

    python bench/scale_reconcile.py [--models 10,50,200] [--code /tmp/old --label before]
Writes (merges into) bench/results/scale_reconcile.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "scale_reconcile.json"


def measure(n: int, workdir: Path) -> dict[str, Any]:
    """Build the store and time the passes, with whatever `monitor` is on sys.path."""
    from monitor.kube.offline import offline_target
    from monitor.operator.reconciler import Operator
    from monitor.store.sqlite import SqliteStore
    from tests.support.kube import chunk

    rng = random.Random(0)
    features = [f"f{i}" for i in range(10)]
    reference = [{**{f: rng.random() for f in features}, "label": i % 2} for i in range(5000)]
    store = SqliteStore(workdir / f"reconcile-{n}.db")
    for m in range(n):
        model = f"model-{m:03d}"
        store.register(
            {
                "model": model,
                "version": "v1",
                "learner": "xgboost",
                "metrics": {"reference": {"roc_auc": 0.84}},
                "reference": reference,
                "artifact": base64.b64encode(b"not a booster").decode(),
            }
        )
        store.append_records(
            [
                {
                    "prediction_id": f"{model}-{j}",
                    "model": model,
                    "version": "v1",
                    "timestamp": "2013-07-01T12:00:00+00:00",
                    "features": {f: rng.random() for f in features},
                    "probability": rng.random(),
                    "predicted_class": 0,
                }
                for j in range(1000)
            ]
        )
        for i in range(6):
            evidence = chunk("v1", i, known_good_version=None, model=model)
            store.save_chunk(replace(evidence, first_seq=i * 500, last_seq=i * 500 + 499))
    operator = Operator(store, offline_target(store))
    warm = []
    for _ in range(2):
        t0 = time.perf_counter()
        operator.reconcile_once()
        warm.append(time.perf_counter() - t0)
    idle = []
    for _ in range(3):
        t0 = time.perf_counter()
        operator.reconcile_once()
        idle.append(time.perf_counter() - t0)
    store.close()
    return {
        "models": n,
        "first_passes_seconds": [round(x, 3) for x in warm],
        "idle_pass_seconds": round(statistics.median(idle), 3),
        "per_model_ms": round(1000 * statistics.median(idle) / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="10,50,200")
    parser.add_argument("--code", type=Path, help="a checkout whose monitor/ is measured")
    parser.add_argument("--label", default="after")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(n) for n in args.models.split(",")]
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps([measure(n, Path(tmp)) for n in sizes]))
        return
    code = args.code or REPO
    env = {**os.environ, "PYTHONPATH": f"{code}:{REPO}"}  # its monitor, this repo's tests
    child = [sys.executable, __file__, "--child", "--models", args.models]
    out = subprocess.run(child, env=env, cwd=code, capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout.splitlines()[-1])
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    old[args.label] = {
        "code": "this checkout" if args.code is None else f"--code {args.code}",
        "command": "python bench/scale_reconcile.py " + " ".join(sys.argv[1:]),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "runs": rows,
    }
    RESULTS.write_text(json.dumps(old, indent=2) + "\n")
    print(json.dumps(old[args.label], indent=2))


if __name__ == "__main__":
    main()
