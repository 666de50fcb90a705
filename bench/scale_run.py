"""One run of `bench/scale_bench.py`: N models on real monitor processes, one store.

The monitors are `replay.launcher`'s (`python -m monitor serve`, Kubernetes off: the offline
operator reconciles every model), the same launcher tests/support/monitor.py wraps. Phases,
in order, each timed: register N models one at a time; ingest every model's records (first
half by 1 sender, second half by 4, each sender a child process: bench/scale_send.py); post
every label; wait until every chunk is analysed with its labels (the lag after the last
label); /metrics; a planned reconcile pass over all models; idle CPU; then steady state:
records at a set rate spread over the models, each POST one model's full chunk, and the lag
from its acknowledgement to the chunk being stored. Peak RSS of all monitor processes is
sampled throughout. With two replicas, the second serves ingest only (half the senders):
with Kubernetes off there is no Lease, so only the first analyses and reconciles, as only the
leader does in a cluster.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench import scale_probe as probe
from replay import launcher

TOKEN = "bench-scale-token"
CHUNK = 500
POSTERS = 4  # steady-state POSTs in flight at once: one alone is bound by its latency
REGISTERING = 4  # registrations in flight at once, as predictors starting together send them
SEND = Path(__file__).with_name("scale_send.py")


def monitors(workdir: Path, database_url: str | None, replicas: int) -> list[Any]:
    env = {
        "MONITOR_CHUNK_SIZE": str(CHUNK),
        "MONITOR_LOG_LEVEL": "WARNING",
        "MONITOR_RETENTION_INTERVAL_SECONDS": "86400",
        **({"MONITOR_DATABASE_URL": database_url} if database_url else {}),
    }
    first = launcher.monitor(
        workdir / "a", TOKEN, env=env, analysis_interval_seconds=2, reconcile_interval_seconds=10
    )
    out = [first]
    for i in range(1, replicas):  # ingest only: no analysis, no operator
        quiet = {**env, "MONITOR_OPERATOR": "false"}
        out.append(
            launcher.monitor(
                workdir / f"r{i}",
                TOKEN,
                env=quiet,
                analysis_interval_seconds=86400,
                reconcile_interval_seconds=86400,
            )
        )
    return out


def send(urls: list[str], bodies: list[bytes], senders: int, workdir: Path, path: str) -> float:
    """Post `bodies` over `senders` child processes (round-robin over the monitors); rec/s."""
    files = []
    for i in range(senders):
        f = workdir / f"bodies-{path.strip('/').replace('/', '-')}-{senders}-{i}.jsonl"
        f.write_bytes(b"\n".join(bodies[i::senders]) + b"\n")
        files.append(f)
    procs = [
        subprocess.Popen(
            [sys.executable, str(SEND), urls[i % len(urls)], TOKEN, path, str(f)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, f in enumerate(files)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.communicate(timeout=1800)[0].splitlines()[-1]) for p in procs]
    errors = sum(r["errors"] for r in results)
    if errors:
        raise RuntimeError(f"{errors} requests to {path} refused")
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sum(r["acked"] for r in results) / wall


def run(
    workdir: Path,
    store_name: str,
    data: dict[str, tuple[list[dict], list[dict]]],
    registration: dict[str, Any],
    *,
    database_url: str | None = None,
    replicas: int = 1,
    steady_rate: float = 20_000,
    steady_seconds: float = 60,
    idle_seconds: float = 30,
    lag_timeout: float = 900,
) -> dict[str, Any]:
    names = sorted(data)
    rows = len(next(iter(data.values()))[0])
    procs = monitors(workdir, database_url, replicas)
    result: dict[str, Any] = {"store": store_name, "replicas": replicas, "models": len(names)}
    result["records_per_model"] = rows
    for p in procs:
        p.start(timeout=120)
    pids = [p.popen.pid for p in procs]
    urls = [p.url for p in procs]
    store = probe.open_store(procs[0].db_path, database_url)
    try:
        with probe.PeakRss(pids) as peak:
            result.update(_measure(workdir, procs, urls, pids, store, names, data, registration))
            result["lag_after_last_label"] = _lag(store, names, rows, lag_timeout)
            result["metrics"] = probe.scrape(urls[0])
            result["reconcile_pass_seconds"] = probe.reconcile_seconds(store)
            result["idle"] = _idle(pids, idle_seconds)
            result["steady"] = _steady(
                urls, pids, store, names, data, steady_rate, steady_seconds, lag_timeout
            )
            result["peak_rss_mib"] = round(peak.peak / 2**20)
        result["rss_mib_end"] = round(probe.rss_bytes(pids) / 2**20)
    finally:
        store.close()
        for p in procs:
            p.stop()
    result["machine_at_end"] = probe.machine()
    return result


def _measure(
    workdir: Path,
    procs: list[Any],
    urls: list[str],
    pids: list[int],
    store: Any,
    names: list[str],
    data: dict[str, tuple[list[dict], list[dict]]],
    registration: dict[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    with (
        httpx.Client(base_url=urls[0], timeout=600, headers=procs[0].auth) as client,
        ThreadPoolExecutor(REGISTERING) as pool,
    ):
        list(pool.map(lambda name: _register(client, registration, name), names))
    out["registration_seconds"] = round(time.monotonic() - t0, 1)
    out["registration_seconds_each"] = round(out["registration_seconds"] / len(names), 2)
    out["registrations_in_flight"] = REGISTERING
    bodies = _interleaved({m: recs for m, (recs, _) in data.items()})
    half = len(bodies) // 2
    cpu0 = probe.cpu_seconds(pids)
    out["ingest_rec_per_s_1_sender"] = round(send(urls, bodies[:half], 1, workdir, "/v1/records"))
    out["ingest_rec_per_s_4_senders"] = round(send(urls, bodies[half:], 4, workdir, "/v1/records"))
    labels = _interleaved({m: lab for m, (_, lab) in data.items()}, key="labels")
    out["labels_rec_per_s"] = round(send(urls, labels, 1, workdir, "/v1/labels"))
    out["cpu_seconds_ingest_and_labels"] = round(probe.cpu_seconds(pids) - cpu0, 1)
    return out


def _register(client: httpx.Client, registration: dict[str, Any], name: str) -> None:
    resp = client.post("/v1/models", json={**registration, "model": name})
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"registering {name}: {resp.status_code} {resp.text[:300]}")


def _interleaved(per_model: dict[str, list[dict]], key: str = "records") -> list[bytes]:
    """Bodies of one model's CHUNK items each, models taken in turn (as predictors send)."""
    chunks = {
        m: [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        for m, items in per_model.items()
    }
    out = []
    for i in range(max(len(c) for c in chunks.values())):
        for m in sorted(chunks):
            if i < len(chunks[m]):
                out.append(json.dumps({key: chunks[m][i]}).encode())
    return out


def _lag(store: Any, names: list[str], rows: int, timeout: float) -> dict[str, Any]:
    """Seconds from the last label's acknowledgement until each model's chunks all stand
    analysed with their labels: median and worst over the models."""
    start, want = time.monotonic(), rows // CHUNK
    done: dict[str, float] = {}
    while len(done) < len(names) and time.monotonic() - start < timeout:
        for model, n in probe.analysed(store, [m for m in names if m not in done], CHUNK).items():
            if n >= want:
                done[model] = time.monotonic() - start
        time.sleep(1)
    lags = sorted(done.values())
    return {
        "models_done": len(done),
        "median_seconds": round(statistics.median(lags), 1) if lags else None,
        "worst_seconds": round(lags[-1], 1) if lags and len(done) == len(names) else None,
        "timed_out": len(done) < len(names),
    }


def _idle(pids: list[int], seconds: float) -> dict[str, Any]:
    """CPU cores the monitors use with nothing arriving (reconcile every 10 s, analysis
    polling every 2 s)."""
    cpu0, t0 = probe.cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    used = probe.cpu_seconds(pids) - cpu0
    return {"seconds": seconds, "cores": round(used / (time.monotonic() - t0), 3)}


def _steady(
    urls: list[str],
    pids: list[int],
    store: Any,
    names: list[str],
    data: dict[str, tuple[list[dict], list[dict]]],
    rate: float,
    seconds: float,
    timeout: float,
) -> dict[str, Any]:
    """`rate` records/s for `seconds`, each POST one model's full chunk (models in turn);
    lag = chunk stored - its POST acknowledged, per chunk."""
    filled: dict[tuple[str, int], float] = {}
    next_index = {m: len(data[m][0]) // CHUNK for m in names}
    period = CHUNK / rate
    stop_at = time.monotonic() + seconds
    cpu0 = probe.cpu_seconds(pids)
    sent = 0

    templates = {  # one model's chunk, its prediction ids to be filled in per POST
        m: json.dumps(
            {
                "records": [
                    {**r, "prediction_id": f"{m}-steady-@@@@@@-{j}"}
                    for j, r in enumerate(data[m][0][:CHUNK])
                ]
            }
        )
        for m in names
    }

    lock, slots = threading.Lock(), iter(range(10**9))
    start = time.monotonic()

    def post_all() -> None:
        """One of POSTERS threads: takes the next slot (model in turn), waits for its time."""
        nonlocal sent
        clients = [httpx.Client(base_url=u, timeout=120) for u in urls]
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        while True:
            with lock:
                k = next(slots)
                model = names[k % len(names)]
                index = next_index[model]
                next_index[model] += 1
            due = start + k * period
            if due >= stop_at:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            body = templates[model].replace("@@@@@@", f"{index:06d}").encode()
            resp = clients[k % len(clients)].post("/v1/records", content=body, headers=headers)
            if resp.status_code != 202:
                raise RuntimeError(f"steady POST: {resp.status_code} {resp.text[:300]}")
            with lock:
                filled[(model, index)] = time.monotonic()
                sent += CHUNK
        for c in clients:
            c.close()

    posters = [threading.Thread(target=post_all, daemon=True) for _ in range(POSTERS)]
    t0 = time.monotonic()
    for poster in posters:
        poster.start()
    stored: dict[tuple[str, int], float] = {}
    while any(p.is_alive() for p in posters) or (
        set(filled) - set(stored) and time.monotonic() - stop_at < timeout
    ):
        for key, at in probe.chunk_times(store, names).items():
            stored.setdefault(key, at)
        time.sleep(1)
    wall = time.monotonic() - t0
    used = probe.cpu_seconds(pids) - cpu0
    lags = sorted(stored[k] - filled[k] for k in filled if k in stored)
    return {
        "target_rec_per_s": rate,
        "achieved_rec_per_s": round(sent / seconds),
        "posters": POSTERS,
        "seconds": seconds,
        "chunks_filled": len(filled),
        "chunks_analysed": len(lags),
        "lag_median_seconds": round(statistics.median(lags), 1) if lags else None,
        "lag_worst_seconds": round(lags[-1], 1) if lags else None,
        "cpu_seconds_per_chunk": round(used / max(1, len(lags)), 3),
        "wall_seconds_until_analysed": round(wall, 1),
        "poll_resolution_seconds": 1,
    }
