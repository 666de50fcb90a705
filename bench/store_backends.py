"""The store's two backends side by side: SQLite and PostgreSQL, same machine, same run.

1. Ingest over real HTTP into real monitor processes (`replay.launcher`): 1, 2 and 4
   concurrent senders post pre-serialised batches of 500 records (bench/ingest_bench.py's
   records: 10 weather features, uuid ids) to `/v1/records`, once into a monitor on a SQLite
   file and once into a monitor on a PostgreSQL database, alternating, each backend's database
   growing by the same volumes. Each sender is its own process (stdlib `http.client`,
   keep-alive), so the client side is not one GIL.
2. Two replicas: two monitor processes on one PostgreSQL database, both serving ingest, the
   senders split across them, against one replica on a database of its own with the same
   history, alternating, at 2 and 4 senders.
3. One analysis cycle (`run_cycle`, bench/analysis_scaling.py's measurement: versions fitted
   before the clock, then read the window, analyse, save and publish every chunk) over a
   100k-row window stored in each backend, each in a fresh child process.

The PostgreSQL server is a throwaway cluster (`tests.support.postgres.running_cluster`: the
tests' initdb + pg_ctl in a temp dir; server defaults, so `fsync` and `synchronous_commit`
are on, as SQLite's `synchronous=FULL`). Records/s = acknowledged records / wall time from the
first sender's first request to the last sender's last answer. CPU seconds per run are read
from /proc (psutil) for each monitor process tree, the PostgreSQL server (postmaster and
every backend), the senders, and the whole machine (/proc/stat), because the 2 cores are
shared by all of them and by whatever else runs.

Writes bench/results/store_backends.json. About 2.5 minutes on 2 cores (`--resummarise`
recomputes the summary of that file from its runs).
    python bench/store_backends.py [--records 100000] [--rounds 2] [--cycle-rows 100000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

RESULTS = REPO / "bench" / "results" / "store_backends.json"
BATCH = 500
VERSION = "v-bench"
TOKEN = "bench-store-token"
# Only ingest runs in the monitors during the measurement: no analysis, no operator, no
# retention pass (their first interval never elapses).
QUIET = {
    "MONITOR_OPERATOR": "false",
    "MONITOR_RETENTION_INTERVAL_SECONDS": "86400",
    "MONITOR_LOG_LEVEL": "WARNING",
}


# -- one sender (a child process) ---------------------------------------------------------


def sender(url: str, token: str, batches: int) -> None:
    """Build `batches` bodies, print "ready", wait for a line on stdin, post them all, print
    the result as JSON (acknowledged records, errors, monotonic start/end, own CPU)."""
    from bench.ingest_bench import record

    bodies = [
        json.dumps({"records": [record(VERSION) for _ in range(BATCH)]}).encode()
        for _ in range(batches)
    ]
    host, port = url.removeprefix("http://").split(":")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.connect()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0, start = os.times(), time.monotonic()
    acked = errors = 0
    for body in bodies:
        conn.request("POST", "/v1/records", body=body, headers=headers)
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status == 202:
            acked += int(json.loads(answer)["accepted"])
        else:
            errors += 1
    end, cpu1 = time.monotonic(), os.times()
    conn.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(json.dumps({"acked": acked, "errors": errors, "start": start, "end": end, "cpu": cpu}))


# -- CPU accounting from /proc ----------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it has reaped."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
        if proc is root:
            total += t.children_user + t.children_system
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(v) for v in stat.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


# -- ingest runs --------------------------------------------------------------------------------


@dataclass
class Target:
    """A named set of monitor processes that senders are spread over (round robin)."""

    name: str
    backend: str
    monitors: list[Any]  # replay.launcher.MonitorProcess


def ingest_run(target: Target, senders: int, records: int, pg_pid: int | None) -> dict[str, Any]:
    batches = max(1, records // senders // BATCH)
    procs = []
    for i in range(senders):
        mon = target.monitors[i % len(target.monitors)]
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--sender", mon.url, mon.token, str(batches)],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:  # every body built and every connection open before the clock
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a sender failed to start")
    servers0 = [tree_cpu(m.popen.pid) for m in target.monitors]
    pg0 = tree_cpu(pg_pid) if pg_pid else 0.0
    busy0, total0 = machine_busy()
    load0, window0 = os.getloadavg()[0], time.monotonic()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        outs.append(json.loads(out.strip().splitlines()[-1]))
    busy1, total1 = machine_busy()
    window = time.monotonic() - window0
    servers1 = [tree_cpu(m.popen.pid) for m in target.monitors]
    pg1 = tree_cpu(pg_pid) if pg_pid else 0.0
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    acked = sum(o["acked"] for o in outs)
    server_cpu = [round(b - a, 2) for a, b in zip(servers0, servers1, strict=True)]
    serving = sum(server_cpu) + (pg1 - pg0)
    ours = sum(server_cpu) + (pg1 - pg0) + sum(o["cpu"] for o in outs)
    machine = busy1 - busy0
    return {
        "target": target.name,
        "backend": target.backend,
        "replicas": len(target.monitors),
        "senders": senders,
        "records": acked,
        "errors": sum(o["errors"] for o in outs),
        "seconds": round(wall, 2),
        "records_per_second": round(acked / wall),
        "cpu_seconds": {
            "monitor_processes": server_cpu,
            "postgres_server": round(pg1 - pg0, 2),
            "senders": round(sum(o["cpu"] for o in outs), 2),
            "machine": round(machine, 2),
            "other_processes": round(max(0.0, machine - ours), 2),
        },
        # Of the machine's capacity while the senders ran (all cores, from "go" until the
        # last sender exited), the share in use: near 1.0 means the run was CPU-bound on the
        # machine, whatever the backend.
        "machine_cpu_utilisation": round(machine / (total1 - total0), 2),
        "window_seconds": round(window, 2),
        "monitor_cpu_per_wall_second": [round(c / wall, 2) for c in server_cpu],
        # Contention-free views: records per CPU-second of the monitor processes, and of the
        # whole serving side (monitors + PostgreSQL server).
        "records_per_serving_cpu_second": round(acked / serving) if serving else None,
        "records_per_monitor_cpu_second": round(acked / sum(server_cpu))
        if sum(server_cpu)
        else None,
        "load_average_1m_before": round(load0, 2),
    }


def show(row: dict[str, Any]) -> None:
    cpu = row["cpu_seconds"]
    print(
        f"ingest {row['target']:<14} senders={row['senders']}  {row['records']:>7,} records"
        f" {row['seconds']:>6.2f}s {row['records_per_second']:>7,}/s  cpu: monitor"
        f" {'+'.join(f'{c:.1f}' for c in cpu['monitor_processes'])} pg {cpu['postgres_server']:.1f}"
        f" senders {cpu['senders']:.1f} other {cpu['other_processes']:.1f}"
        f" (machine {row['machine_cpu_utilisation']:.0%})  errors={row['errors']}",
        flush=True,
    )


def runs_of(rows: list[dict[str, Any]], target: str, senders: int) -> list[dict[str, Any]]:
    return [r for r in rows if r["target"] == target and r["senders"] == senders]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def mean_rate(rows: list[dict[str, Any]], target: str, senders: int) -> float:
    return mean([r["records_per_second"] for r in runs_of(rows, target, senders)])


def summarise(ingest: list[dict[str, Any]], cycle: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean rates per target and sender count, their ratios (also per round: the runs of a
    ratio are adjacent in time), CPU per 100k records, cycle seconds, the issue's targets."""
    targets = (
        ("sqlite", ("1", "2", "4")),
        ("postgres", ("1", "2", "4")),
        ("pg-1-replica", ("2", "4")),
        ("pg-2-replicas", ("2", "4")),
    )
    rates = {t: {s: round(mean_rate(ingest, t, int(s))) for s in ss} for t, ss in targets}
    pairs = {
        "postgres_over_sqlite": ("postgres", "sqlite", ("1", "2", "4")),
        "two_replicas_over_one_on_postgres": ("pg-2-replicas", "pg-1-replica", ("2", "4")),
    }
    ratios: dict[str, Any] = {}
    for name, (top, bottom, senders) in pairs.items():
        ratios[name] = {s: round(rates[top][s] / rates[bottom][s], 2) for s in senders}
        ratios[f"{name}_per_round"] = {
            s: [
                round(a["records_per_second"] / b["records_per_second"], 2)
                for a, b in zip(
                    runs_of(ingest, top, int(s)), runs_of(ingest, bottom, int(s)), strict=True
                )
            ]
            for s in senders
        }

    def cycle_mean(backend: str) -> float:
        return mean([c["cycle_seconds"] for c in cycle if c["backend"] == backend])

    ratios["cycle_seconds_postgres_over_sqlite"] = round(
        cycle_mean("postgres") / cycle_mean("sqlite"), 2
    )

    def cpu(target: str, senders: str) -> dict[str, Any]:
        runs = runs_of(ingest, target, int(senders))
        per_100k = [100_000 / r["records"] for r in runs]
        return {
            "monitor_processes": round(
                mean(
                    [
                        sum(r["cpu_seconds"]["monitor_processes"]) * k
                        for r, k in zip(runs, per_100k, strict=True)
                    ]
                ),
                2,
            ),
            "postgres_server": round(
                mean(
                    [
                        r["cpu_seconds"]["postgres_server"] * k
                        for r, k in zip(runs, per_100k, strict=True)
                    ]
                ),
                2,
            ),
            "machine_cpu_utilisation": round(mean([r["machine_cpu_utilisation"] for r in runs]), 2),
        }

    pg_vs_sqlite = ratios["postgres_over_sqlite"]
    two_vs_one = ratios["two_replicas_over_one_on_postgres"]
    return {
        "ingest_records_per_second_mean": rates,
        "ratios": ratios,
        "cpu_seconds_per_100k_records_mean": {t: {s: cpu(t, s) for s in ss} for t, ss in targets},
        "cycle_seconds_mean": {b: round(cycle_mean(b), 2) for b in ("sqlite", "postgres")},
        "targets": {
            "postgres_ingest_at_1_sender_vs_sqlite": {
                "target": 0.7,
                "measured": pg_vs_sqlite["1"],
                "met": pg_vs_sqlite["1"] >= 0.7,
            },
            "two_replicas_vs_one": {
                "target": 1.5,
                "measured_at_2_senders": two_vs_one["2"],
                "measured_at_4_senders": two_vs_one["4"],
                "met": max(two_vs_one.values()) >= 1.5,
            },
        },
    }


# -- the analysis cycle on each backend (child processes) ---------------------------------------


def cycle_child(backend: str, url: str, regs_path: Path, rows: int) -> dict[str, Any]:
    from bench.analysis_scaling import CHUNK, cycle_on, rows_of
    from contract.registration import Registration
    from monitor.analysis.chunks import FittedVersion
    from monitor.store import open_store
    from tests.support.postgres import Where

    regs = {k: Registration.model_validate(v) for k, v in json.loads(regs_path.read_text()).items()}
    good, retrain = (FittedVersion.fit(regs[k], CHUNK) for k in ("good", "retrain"))
    frame = rows_of(rows, good)
    with tempfile.TemporaryDirectory() as tmp:
        where = Where(Path(tmp) / "m.db", url if backend == "postgres" else None)
        with open_store(where) as store:
            seconds, chunks = cycle_on(store, frame, regs, good, retrain)
            started = time.perf_counter()
            window = store.records_frame(good.registration.model, good.registration.version)
            read = time.perf_counter() - started
    return {
        "backend": backend,
        "rows": rows,
        "chunks": len(chunks),
        "cycle_seconds": round(seconds, 3),
        "records_frame_seconds": round(read, 3),
        "records_frame_rows": len(window),
    }


def registrations() -> dict[str, Any]:
    """The good model and its equivalent retrain, trained now (seeded; a few seconds)."""
    from bench.replay_accuracy import registration_of
    from bentos.training.data import load_weather, time_split, weather_schema
    from bentos.training.train import RELEASES, train_release

    schema = weather_schema()
    split = time_split(load_weather(), schema)
    return {
        k: registration_of(train_release(RELEASES[k], split, schema), schema)
        for k in ("good", "retrain")
    }


def cycles(cluster: Any, regs_path: Path, rows: int, rounds: int) -> list[dict[str, Any]]:
    results = []
    for i in range(rounds):
        order = ("sqlite", "postgres") if i % 2 == 0 else ("postgres", "sqlite")
        for backend in order:
            url = cluster.create_database() if backend == "postgres" else ""
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--cycle-child",
                    backend,
                    url,
                    str(regs_path),
                    str(rows),
                ],
                cwd=REPO,
                check=True,
                capture_output=True,
                text=True,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(res)
            print(
                f"cycle  {backend:<8} {res['rows']:,} rows  {res['chunks']} chunks"
                f"  run_cycle {res['cycle_seconds']:.2f}s"
                f"  (records_frame alone {res['records_frame_seconds']:.2f}s)",
                flush=True,
            )
    return results


# -- the run ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per ingest run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each run")
    parser.add_argument("--cycle-rows", type=int, default=100_000)
    parser.add_argument("--cycle-rounds", type=int, default=1)
    parser.add_argument(
        "--sender", nargs=3, metavar=("URL", "TOKEN", "BATCHES"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--cycle-child", nargs=4, metavar=("BACKEND", "URL", "REGS", "ROWS"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--resummarise",
        action="store_true",
        help="recompute the summary of the results file from its runs (no measuring)",
    )
    args = parser.parse_args()
    if args.resummarise:
        results = json.loads(RESULTS.read_text())
        results["summary"] = summarise(results["ingest"], results["cycle"])
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(json.dumps(results["summary"], indent=1))
        return
    if args.sender:
        url, token, batches = args.sender
        sender(url, token, int(batches))
        return
    if args.cycle_child:
        backend, url, regs, rows = args.cycle_child
        print(json.dumps(cycle_child(backend, url, Path(regs), int(rows))))
        return

    from replay import launcher
    from tests.support.monitor import register_as
    from tests.support.postgres import running_cluster

    started = time.monotonic()
    regs = registrations()
    ingest: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, running_cluster() as cluster:
        work = Path(tmp)
        regs_path = work / "registrations.json"
        regs_path.write_text(
            json.dumps({k: r.model_dump(by_alias=True, mode="json") for k, r in regs.items()})
        )
        pg_pid = postmaster_pid(cluster.data)
        one_db, two_db = cluster.create_database(), cluster.create_database()

        def monitor(name: str, url: str | None) -> Any:
            env = {**QUIET, **({"MONITOR_DATABASE_URL": url} if url else {})}
            return launcher.monitor(
                work / name,
                TOKEN,
                env=env,
                analysis_interval_seconds=86400,
                reconcile_interval_seconds=86400,
            )

        sqlite_mon = monitor("sqlite", None)
        pg_mon = monitor("postgres", one_db)
        replica_a, replica_b = monitor("replica-a", two_db), monitor("replica-b", two_db)
        procs = (sqlite_mon, pg_mon, replica_a, replica_b)
        with launcher.running(*procs):
            for proc in procs:
                proc.start(timeout=120)
            for proc in (sqlite_mon, pg_mon, replica_a):  # one registration per database
                register_as(proc, regs["good"], VERSION)
            sqlite_t = Target("sqlite", "sqlite", [sqlite_mon])
            pg_t = Target("postgres", "postgres", [pg_mon])
            one_t = Target("pg-1-replica", "postgres", [replica_a])
            two_t = Target("pg-2-replicas", "postgres", [replica_a, replica_b])
            for target in (sqlite_t, pg_t, one_t):  # warm-up: imports, first pages
                ingest_run(target, 2, 10_000, None)
            ingest_run(Target("warm-b", "postgres", [replica_b]), 1, 5_000, None)
            print(f"started and warmed up in {time.monotonic() - started:.0f}s", flush=True)

            for i in range(args.rounds):
                for senders in (1, 2, 4):
                    pair = (sqlite_t, pg_t) if (i + senders) % 2 else (pg_t, sqlite_t)
                    for target in pair:
                        row = ingest_run(target, senders, args.records, pg_pid)
                        ingest.append({**row, "round": i})
                        show(row)
                for senders in (2, 4):
                    pair = (one_t, two_t) if (i + senders) % 2 else (two_t, one_t)
                    for target in pair:
                        row = ingest_run(target, senders, args.records, pg_pid)
                        ingest.append({**row, "round": i})
                        show(row)
        cycle = cycles(cluster, regs_path, args.cycle_rows, args.cycle_rounds)

    summary = summarise(ingest, cycle)
    results = {
        "machine": {"cpus": os.cpu_count()},
        "settings": {
            "records_per_run": args.records,
            "batch": BATCH,
            "rounds": args.rounds,
            "cycle_rows": args.cycle_rows,
            "postgres": "throwaway cluster, server defaults (fsync, synchronous_commit on),"
            " Unix socket, same disk as the SQLite file",
        },
        "summary": summary,
        "ingest": ingest,
        "cycle": cycle,
        "seconds": round(time.monotonic() - started),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
