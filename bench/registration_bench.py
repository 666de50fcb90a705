"""Registration in bulk: seconds per registration when many models arrive, and what a restart
costs (issue 24, item 5; target: under 1 s per model when 20 arrive).

Against a real `python -m monitor serve` (tests/support/monitor.py) on loopback, SQLite:

1. `concurrent`: N tiny same-shaped models (5 features, 30 trees, 500 reference rows; each
   trained with its own seed, so every artifact is distinct and really vetted) POSTed to
   `/v1/models` at once from N threads: the median latency, the wall time of all N, and the
   wall time per model (= total / N).
2. `sequential`: N more such models, one after another: the median per registration.
3. `restart`: the monitor stopped and started on the same database (the start-up time), then
   all 2N registrations sent again at once: every one must be `200 unchanged`, and the
   restarted monitor's log must show no vetting (the count of `vetted` lines).
4. `vetting_only`: the vetting alone in this process, same run, N artifacts: a child of the
   warm process against a fresh interpreter that imports what it needs (the old way), as a
   ratio.

Writes its run under `runs[<label>]` of bench/results/registration.json (other labels kept,
so a run before a change and one after sit side by side), and prints it.
    python bench/registration_bench.py [--n 20] [--label after]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import httpx  # noqa: E402

from tests.support.monitor import MonitorProcess, running_monitor  # noqa: E402

RESULTS = REPO / "bench" / "results" / "registration.json"
FEATURES = 5


def tiny_registration(seed: int, rows: int = 500) -> dict[str, Any]:
    """A registration body of a small booster trained on random rows with `seed`."""
    import numpy as np
    import xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, FEATURES))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    booster = xgboost.train(
        {"max_depth": 3, "objective": "binary:logistic", "nthread": 1, "seed": seed},
        xgboost.DMatrix(x, label=y),
        num_boost_round=30,
    )
    ref_x, ref_y = x[:rows], y[:rows]
    probability = booster.inplace_predict(ref_x.astype(np.float32))
    names = [f"x{i}" for i in range(FEATURES)]
    reference = [
        {
            **{n: float(v) for n, v in zip(names, row, strict=True)},
            "label": int(lab),
            "probability": float(p),
        }
        for row, lab, p in zip(ref_x, ref_y, probability, strict=True)
    ]
    return {
        "model": f"bulk_{seed}",
        "version": f"v{seed}",
        "schema": {"features": [{"name": n} for n in names], "label": {"name": "label"}},
        "reference": reference,
        "artifact": base64.b64encode(bytes(booster.save_raw("ubj"))).decode(),
    }


def post(monitor: MonitorProcess, body: dict[str, Any]) -> tuple[int, float]:
    start = time.perf_counter()
    resp = httpx.post(
        f"{monitor.url}/v1/models", json=body, headers=monitor.headers("operator"), timeout=300
    )
    return resp.status_code, time.perf_counter() - start


def at_once(monitor: MonitorProcess, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(monitor, b), bodies))
    total = time.perf_counter() - start
    return summary(answers, total)


def one_by_one(monitor: MonitorProcess, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    answers = [post(monitor, b) for b in bodies]
    return summary(answers, time.perf_counter() - start)


def summary(answers: list[tuple[int, float]], total: float) -> dict[str, Any]:
    seconds = [s for _, s in answers]
    codes: dict[str, int] = {}
    for code, _ in answers:
        codes[str(code)] = codes.get(str(code), 0) + 1
    return {
        "registrations": len(answers),
        "status_codes": codes,
        "median_seconds": round(statistics.median(seconds), 3),
        "max_seconds": round(max(seconds), 3),
        "total_seconds": round(total, 3),
        "seconds_per_model": round(total / len(answers), 3),
    }


def warm_rss_mb(monitor: MonitorProcess) -> float | None:
    """Resident memory of the monitor's warm vetting process (the forkserver), if it runs."""
    import psutil

    for proc in psutil.Process(monitor.popen.pid).children(recursive=True):
        if "forkserver" in " ".join(proc.cmdline()):
            return round(proc.memory_info().rss / 2**20, 1)
    return None


def vetted_lines(log: str) -> int:
    return sum(1 for line in log.splitlines() if " vetted " in line)


FRESH = """
import json, os, sys
os.environ["OMP_NUM_THREADS"] = "1"
from monitor.analysis.artifact_child import check
data = json.loads(sys.stdin.read())
raw = bytes.fromhex(data["artifact"])
sys.stdout.write(json.dumps(check(raw, data["schema"], data["reference"], 2**31)))
"""


def vetting_only(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """`measure_vetting` in a `python -c` interpreter: multiprocessing re-imports a script
    main module in every forked child (this file's imports would be timed), never `-c`."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(bodies, f)
        f.flush()
        code = (
            "import json, sys; from bench.registration_bench import measure_vetting;"
            " print(json.dumps(measure_vetting(sys.argv[1])))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, f.name],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_vetting(path: str) -> dict[str, Any]:
    """The vetting alone, same run: `artifact.vet` (children of the warm process; the first
    one also starts it) against a fresh interpreter per artifact that imports what the child
    needs and runs the same check (what the monitor did before)."""
    from monitor.analysis.artifact import vet

    bodies = json.loads(Path(path).read_text())
    warm, fresh = [], []
    for body in bodies:
        raw = base64.b64decode(body["artifact"])
        start = time.perf_counter()
        vet(raw, body["schema"], body["reference"], memory_bytes=2**31, timeout_seconds=120)
        warm.append(time.perf_counter() - start)
        payload = json.dumps({**body, "artifact": raw.hex()})
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", FRESH], input=payload, text=True, capture_output=True, check=True
        )
        fresh.append(time.perf_counter() - start)
    return {
        "artifacts": len(bodies),
        "warm_first_seconds": round(warm[0], 3),
        "warm_median_seconds": round(statistics.median(warm[1:]), 3),
        "fresh_interpreter_median_seconds": round(statistics.median(fresh), 3),
        "fresh_over_warm": round(statistics.median(fresh) / statistics.median(warm[1:]), 1),
    }


def run(n: int) -> dict[str, Any]:
    bodies = [tiny_registration(seed) for seed in range(2 * n)]
    with tempfile.TemporaryDirectory() as tmp, running_monitor(Path(tmp)) as monitor:
        out: dict[str, Any] = {"n": n, "cpus": os.cpu_count()}
        out["concurrent"] = at_once(monitor, bodies[:n])
        out["sequential"] = one_by_one(monitor, bodies[n:])
        out["vetted_before_restart"] = vetted_lines(monitor.log())
        out["warm_process_rss_mb"] = warm_rss_mb(monitor)
        monitor.stop()
        start = time.perf_counter()
        monitor.start(timeout=60)
        out["restart_start_seconds"] = round(time.perf_counter() - start, 3)
        out["restart"] = at_once(monitor, bodies)
        out["vetted_after_restart"] = vetted_lines(monitor.log()) - out["vetted_before_restart"]
    out["vetting_only"] = vetting_only(bodies[:n])
    return out


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    result = {"commit": commit(), **run(args.n)}
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved.setdefault("command", "python bench/registration_bench.py --n 20 --label <label>")
    saved.setdefault("runs", {})[args.label] = result
    RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
