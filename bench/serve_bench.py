"""Serving benchmark: the shipped BentoML predictor vs a bare Starlette app vs MLServer.

Runs each server back to back on this machine (each started and stopped here), drives it
with `wrk` at several concurrencies with single-record and 100-record bodies made of real
2013 replay rows, prints req/s, rows/s, p50, p99 and server CPU per request, and ends with
issue 22's scorecard: CPU/request vs bare (shipping on and off), p99 vs bare, req/s and
rows/s vs MLServer, cores busy, explain on/off. Only ratios measured in the same run mean
anything on a shared 2-core machine.

    .venv/bin/python bench/serve_bench.py                 # everything, ~6 min
    .venv/bin/python bench/serve_bench.py --quick --only shipped,bare
    .venv/bin/python bench/serve_bench.py --only shipped --output bench/results/serve_explain.json

The shipped server is also measured with `?explain=5` (`--explain K`, 0 to skip), each run
right after the explain-off run it is compared to; the ratios are in `explain_on_vs_off`.

Figures go to bench/results/serve.json (see docs/performance.md for their reading).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path[:0] = [
    str(Path(__file__).resolve().parent / "baselines"),
    str(Path(__file__).resolve().parents[1]),
]
import serve_load  # noqa: E402
import serve_scoring  # noqa: E402
import serve_servers  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LOGS = Path(tempfile.gettempdir()) / "serve-bench-logs"  # server logs, kept for a post-mortem
ALL_SERVERS = (
    "shipped", "shipped_noship", "shipped_routed", "shipped_shared", "shipped_tuned", "stock",
    "bare", "bare_shared", "mlserver",
)  # fmt: skip
DEFAULT_SERVERS = ("shipped", "shipped_noship", "shipped_routed", "bare", "mlserver")
# The shipped service's variants (issue 22): `shipped` ships every record to a sink (the
# deployed configuration); `_noship` without a monitor; `_routed` with the fast path off
# (BentoML's routed API, shipping on); `_shared` with BentoML's one shared socket.
VARIANT_ENV = {
    "shipped_routed": {"PREDICTOR_FAST_PATH": "false"},
    "shipped_shared": {"PREDICTOR_REUSE_PORT": "false"},
}
SHIPPING = ("shipped", "shipped_routed", "shipped_shared")
# The settings docs/performance.md recommends, applied from outside to the unmodified
# shipped service: BentoML config overrides plus the GC hook (baselines/gc_hook).
TUNED_ENV = {
    "BENTOML_CONFIG_OPTIONS": (
        "services.modelguard_predictor.logging.access.enabled=false "
        "services.modelguard_predictor.tracing.excluded_urls="
        "/predict,/predict_batch,/livez,/readyz,/metrics"
    ),
    "BENCH_PATCH_TIMEOUT": "1",  # cancel BentoML's per-request timeout timer
    "BENCH_GC_FREEZE_AFTER": "4",  # gc.freeze() once the worker has imported everything
}
TARGETS = {  # issue 22; ratios measured in the same run
    "cores_busy": 1.7,
    "cpu_vs_bare_single": 1.15,
    "p99_vs_bare_single_c32": 1.2,
    "req_s_vs_mlserver_single": 2.0,
    "rows_s_vs_mlserver_batch100": 1.2,
    "explain_cpu_single": 2.0,
    "explain_cpu_batch100": 4.0,
}
console = Console(width=120)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--only",
        default=",".join(DEFAULT_SERVERS),
        help=f"servers, comma-separated, from {', '.join(ALL_SERVERS)}",
    )
    ap.add_argument("--quick", action="store_true", help="4 s runs, c=1 and 32 only")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    ap.add_argument("--concurrency", default="1,8,32", help="wrk connections, comma-separated")
    ap.add_argument("--payloads", default="single,batch100", help="single, batch100")
    ap.add_argument("--workers", type=int, default=2, help="workers for bare/stock/MLServer")
    ap.add_argument(
        "--model-tag", default=os.environ.get("PREDICTOR_MODEL_TAG", "rain_forecast:latest")
    )
    ap.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", "var/bentoml"))
    ap.add_argument("--stock-endpoint", default="predict", help="predict|predict_async|predict_raw")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for shipped/stock")
    ap.add_argument(
        "--uv-extras",
        action="store_true",
        help="also run shipped/bare with httptools + uvloop (side folder .venv-uvextras)",
    )
    ap.add_argument(
        "--explain",
        type=int,
        default=5,
        help="also measure the shipped server with ?explain=K, right after each explain-off run"
        " on the same server (0: not measured)",
    )
    ap.add_argument("--output", type=Path, default=RESULTS / "serve.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.concurrency = 4.0, 1.0, "1,32"
    args.bentoml_home = str(Path(args.bentoml_home).resolve())
    return args


def server_specs(args: argparse.Namespace, names: list[str], workdir: Path) -> list[Any]:
    model = serve_scoring.load(args.model_tag, args.bentoml_home)
    extra = dict(kv.split("=", 1) for kv in args.env)
    specs = []
    for name in names:
        if name.startswith("shipped"):
            if not serve_servers.shipped_available():
                console.print(
                    f"[yellow]skipping {name}: bentos/service.py or bentofile.yaml missing"
                )
                continue
            env = extra | (TUNED_ENV if name == "shipped_tuned" else VARIANT_ENV.get(name, {}))
            if name in SHIPPING:
                env["PREDICTOR_MONITOR_URL"] = sink_url()
            spec = serve_servers.shipped_spec(args.bentoml_home, args.model_tag, args.workers, env)
            spec.name = name
            specs.append(spec)
        elif name == "stock":
            specs.append(
                serve_servers.stock_spec(
                    args.bentoml_home, args.model_tag, args.workers, extra, args.stock_endpoint
                )
            )
        elif name in ("bare", "bare_shared"):
            spec = serve_servers.bare_spec(args.bentoml_home, args.model_tag, args.workers)
            if name == "bare_shared":
                spec.argv.append("--shared-socket")
                spec.name = name
            specs.append(spec)
        elif name == "mlserver":
            specs.append(
                serve_servers.mlserver_spec(model.path, model.version, args.workers, workdir / "ml")
            )
        else:
            raise SystemExit(f"unknown server {name!r}; choose from {', '.join(ALL_SERVERS)}")
    if args.uv_extras:
        specs += [
            serve_servers.with_uv_extras(copy.deepcopy(s))
            for s in specs
            if s.name in ("shipped", "shipped_tuned", "bare")
        ]
    return specs


_SINK: list[serve_servers.RecordSink] = []


def sink_url() -> str:
    """One records sink for the whole run (started on first use)."""
    if not _SINK:
        _SINK.append(serve_servers.RecordSink())
    return _SINK[0].url


def check_scores(spec: Any, body_file: Path, model: serve_scoring.LoadedModel) -> None:
    """Every server must score the same booster: compare one body's probabilities."""
    body = body_file.read_text().splitlines()[0]
    url = f"http://127.0.0.1:{spec.port}{spec.predict_path}"
    resp = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    resp.raise_for_status()
    if spec.protocol == "v2":
        got = [float(p) for p in resp.json()["outputs"][0]["data"]]
    else:
        got = [float(row["probability"]) for row in resp.json()]
    if spec.protocol == "v2":
        tensor = json.loads(body)["inputs"][0]
        x = np.array(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        want = [float(p) for p in model.booster.inplace_predict(x)]
    else:
        want = [p["probability"] for p in serve_scoring.predict(model, json.loads(body)["records"])]
    if any(abs(a - b) > 1e-5 for a, b in zip(got, want, strict=True)):
        raise RuntimeError(f"{spec.name} scores differ from the booster: {got} vs {want}")


def bench_server(
    spec: Any, args: argparse.Namespace, bodies: dict[tuple[str, str], Path], logdir: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    model = serve_scoring.load(args.model_tag, args.bentoml_home)
    with serve_servers.running(spec, logdir):
        check_scores(spec, bodies[(spec.protocol, "single")], model)
        if spec.name == "shipped" and args.explain:
            check_explained(spec, bodies[(spec.protocol, "batch100")], args.explain)
        url = f"http://127.0.0.1:{spec.port}{spec.predict_path}"
        for payload in args.payloads.split(","):
            body_file = bodies[(spec.protocol, payload)]
            n_rows = serve_load.PAYLOAD_ROWS[payload]
            for conns in [int(c) for c in args.concurrency.split(",")]:
                serve_load.run_wrk(url, body_file, conns, args.warmup, n_rows)
                res = serve_load.run_wrk(url, body_file, conns, args.duration, n_rows, spec.pid)
                row = {"server": spec.name, "payload": payload, "connections": conns}
                rows.append(row | res.as_dict() | {"load1": os.getloadavg()[0]})
                _print(spec.name, payload, conns, res)
                if spec.name == "shipped" and args.explain:
                    # Explain on, same server, right after the explain-off run it is compared to.
                    on = f"{url}?explain={args.explain}"
                    serve_load.run_wrk(on, body_file, conns, args.warmup, n_rows)
                    res = serve_load.run_wrk(on, body_file, conns, args.duration, n_rows, spec.pid)
                    row = {"server": EXPLAINED, "payload": payload, "connections": conns}
                    rows.append(row | res.as_dict() | {"load1": os.getloadavg()[0]})
                    _print(EXPLAINED, payload, conns, res)
    return rows


EXPLAINED = "shipped_explain"  # the shipped server with ?explain=k (see --explain)


def _print(name: str, payload: str, conns: int, res: Any) -> None:
    console.print(
        f"  {name:8} {payload:8} c={conns:<3} {res.req_per_s:9.1f} req/s "
        f"p50 {res.p50_ms:7.2f} ms  p99 {res.p99_ms:8.2f} ms  "
        f"cpu {res.server_cpu_ms_per_req} ms/req  non-2xx {res.non_2xx}"
    )


def check_explained(spec: Any, body_file: Path, k: int) -> None:
    """The explain-on body the bench measures really carries k contributions per record."""
    body = body_file.read_text().splitlines()[0]
    url = f"http://127.0.0.1:{spec.port}{spec.predict_path}?explain={k}"
    resp = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    resp.raise_for_status()
    if any(len(p["explanation"]["contributions"]) != k for p in resp.json()):
        raise RuntimeError(f"{spec.name}: ?explain={k} did not explain every record")


def find(
    rows: list[dict[str, Any]], server: str, payload: str, conns: int
) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in rows
            if (r["server"], r["payload"], r["connections"]) == (server, payload, conns)
        ),
        None,
    )


def cores_busy(row: dict[str, Any] | None) -> float | None:
    """Server cores in use over a run: req/s x CPU seconds per request."""
    if not row or not row.get("server_cpu_ms_per_req"):
        return None
    return round(row["req_per_s"] * row["server_cpu_ms_per_req"] / 1000, 2)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def scorecard(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 22's ratios, all from this run: (what, value, target, met)."""
    at = {(r["server"], r["payload"], r["connections"]): r for r in rows}

    def get(server: str, payload: str, key: str, conns: int = 32) -> Any:
        row = at.get((server, payload, conns))
        return row.get(key) if row else None

    cpu = "server_cpu_ms_per_req"
    card: list[tuple[str, float | None, str, float | None]] = []
    for server in ("shipped", "bare", "shipped_shared", "bare_shared", "mlserver"):
        for payload in ("single", "batch100"):
            busy = cores_busy(at.get((server, payload, 32)))
            if busy is not None:
                card.append((f"cores busy, {server}, {payload} c=32", busy, ">=", 1.7))
    for payload in ("single", "batch100"):
        target = TARGETS["cpu_vs_bare_single"] if payload == "single" else None
        for server in ("shipped", "shipped_noship", "shipped_routed"):
            value = _ratio(get(server, payload, cpu), get("bare", payload, cpu))
            card.append((f"CPU/req vs bare, {server}, {payload} c=32", value, "<=", target))
        ship = get("shipped", payload, cpu)
        noship = get("shipped_noship", payload, cpu)
        share = round((ship - noship) / ship, 3) if ship and noship else None
        card.append((f"record shipping's share of shipped CPU/req, {payload}", share, "", None))
    p99 = _ratio(get("shipped", "single", "p99_ms"), get("bare", "single", "p99_ms"))
    card.append(("p99 vs bare, shipped, single c=32", p99, "<=", TARGETS["p99_vs_bare_single_c32"]))
    req = _ratio(get("shipped", "single", "req_per_s"), get("mlserver", "single", "req_per_s"))
    card.append(("req/s vs MLServer, single c=32", req, ">=", TARGETS["req_s_vs_mlserver_single"]))
    rws = _ratio(
        get("shipped", "batch100", "rows_per_s"), get("mlserver", "batch100", "rows_per_s")
    )
    card.append(("rows/s vs MLServer, batch100 c=32", rws, ">=", 1.2))
    for payload, key in (("single", "explain_cpu_single"), ("batch100", "explain_cpu_batch100")):
        value = _ratio(get(EXPLAINED, payload, cpu), get("shipped", payload, cpu))
        card.append((f"CPU/req explain on / off, {payload} c=32", value, "<=", TARGETS[key]))
    out = []
    for what, value, op, target in card:
        met = None
        if value is not None and target is not None:
            met = value >= target if op == ">=" else value <= target
        out.append(
            {"what": what, "value": value, "target": f"{op} {target}" if target else "", "met": met}
        )
    return out


def explain_ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Explain on / explain off on the same server, same run, per payload and connections:
    req/s (below 1: slower) and server CPU per request (above 1: costlier)."""
    out: dict[str, Any] = {}
    for off in [r for r in rows if r["server"] == "shipped"]:
        on = find(rows, EXPLAINED, off["payload"], off["connections"])
        if on is None or not off["req_per_s"]:
            continue
        key = f"{off['payload']}_c{off['connections']}"
        entry: dict[str, Any] = {"req_s": round(on["req_per_s"] / off["req_per_s"], 3)}
        cpu_on, cpu_off = on["server_cpu_ms_per_req"], off["server_cpu_ms_per_req"]
        if cpu_on and cpu_off:
            entry["cpu_per_req"] = round(cpu_on / cpu_off, 3)
        entry["p99_ms_off_on"] = [off["p99_ms"], on["p99_ms"]]
        out[key] = entry
    return out


def print_table(rows: list[dict[str, Any]], card: list[dict[str, Any]]) -> None:
    table = Table(title="Serving benchmark (wrk, one client thread)")
    cols = ("server", "payload", "conns", "req/s", "rows/s", "p50 ms", "p99 ms", "cpu ms/req")
    for col in (*cols, "non-2xx"):
        table.add_column(col, justify="right" if col not in ("server", "payload") else "left")
    for r in rows:
        table.add_row(
            r["server"], r["payload"], str(r["connections"]), f"{r['req_per_s']:.0f}",
            f"{r['rows_per_s']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
            str(r["server_cpu_ms_per_req"]), str(r["non_2xx"]),
        )  # fmt: skip
    console.print(table)
    score = Table(title="Scorecard (issue 22): ratios from this run")
    for col in ("what", "value", "target", "met"):
        score.add_column(col, justify="left" if col == "what" else "right")
    for c in card:
        met = {True: "yes", False: "NO", None: ""}[c["met"]]
        score.add_row(c["what"], "-" if c["value"] is None else str(c["value"]), c["target"], met)
    console.print(score)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(serve_servers.QUIET_ENV)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    started = time.time()
    load_start = list(os.getloadavg())
    model = serve_scoring.load(args.model_tag, args.bentoml_home)
    records = serve_load.replay_records(model.schema, limit=20_000)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        workdir = Path(tmp)
        bodies = {
            (proto, payload): serve_load.write_bodies(
                records, model.schema, proto, n, workdir / f"{proto}-{payload}.jsonl"
            )
            for proto in ("records", "v2")
            for payload, n in serve_load.PAYLOAD_ROWS.items()
        }
        rows: list[dict[str, Any]] = []
        for spec in server_specs(args, names, workdir):
            console.print(f"[bold]{spec.name}[/]")
            rows += bench_server(spec, args, bodies, LOGS)
    card = scorecard(rows)
    explain = explain_ratios(rows)
    if explain:
        console.print("[bold]explain on / off[/] (same server, same run): " + json.dumps(explain))
    report = {
        "command": " ".join(
            ["bench/serve_bench.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "model": {"tag": args.model_tag, "version": model.version},
        "load_average_start_end": [load_start, list(os.getloadavg())],
        "under_contention": "the machine is shared; load1 per run is in each result row",
        "results": rows,
        "scorecard": card,
        "explain_on_vs_off": explain,
        "targets": TARGETS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(rows, card)  # last, so `make bench` ends with the scorecard
    console.print(f"wrote {args.output} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
