"""`make demo` and `make replay`: the whole stack on one machine, on the embedded defaults.

demo   trains the good model and a worse release, builds the Bento, serves both versions,
       starts the monitor, replays Jul-Dec 2013 with the worse release going live mid-way,
       and ends with the per-chunk table, the monitor's decision and the report's path.
replay the measurement run: the good model is the known-good version, an equivalent retrain
       serves all of Jul-Dec; per-chunk estimated vs realized ROC AUC for both, their MAE
       next to the naive guess, records lost end to end, monitor CPU and memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from bentos.training.data import load_weather, time_split, weather_schema
from replay.driver import Replayer, Step
from replay.launcher import (
    REPO,
    MonitorProcess,
    Process,
    running,
    start_monitor,
    start_predictor,
)
from replay.pending import PendingPoller, compare
from replay.report import (
    DECISION_KINDS,
    chunk_rows,
    chunk_table,
    estimation_errors,
    write_chunk_csv,
)
from replay.stack import new_token, version_of, wait_known_good, wait_registered

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

app = typer.Typer(add_completion=False, help=__doc__)
# A pipe or CI log is not a terminal: keep the closing table readable there too.
console = Console(width=None if sys.stdout.isatty() else 120)
MODEL = "rain_forecast"


def ensure_models(releases: list[str]) -> dict[str, str]:
    """Train the releases into the BentoML store unless already there (training is seeded)."""
    from bentos.training.train import RELEASES, save_to_store, train_release

    schema = weather_schema()
    split = time_split(load_weather(), schema)
    tags = {}
    for name in releases:
        with console.status(f"training {name}"):
            tags[name] = save_to_store(train_release(RELEASES[name], split, schema), schema)
        console.print(f"model [bold]{tags[name]}[/] in the BentoML store")
    return tags


def build_bento() -> None:
    with console.status("bentoml build (offline)"):
        bentoml = str(Path(sys.executable).with_name("bentoml"))
        out = subprocess.run([bentoml, "build", "."], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bentoml build failed:\n{out.stdout}\n{out.stderr}")
    tag = next((ln for ln in out.stdout.splitlines() if "Successfully built" in ln), "built")
    console.print(tag.strip())


class Sampler(threading.Thread):
    """Monitor CPU and RSS while the replay runs (psutil on the monitor's process tree)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs)
                cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            except psutil.Error:
                continue
            self.peak_rss = max(self.peak_rss, rss)
            self.cpu_seconds = max(self.cpu_seconds, cpu)

    def stop(self) -> None:
        self._stop.set()


def wait_for_analysis(
    monitor: Process, expected: dict[str, int], timeout: float = 180
) -> list[dict[str, Any]]:
    """Until every version has all its complete chunks analysed with their labels joined."""
    deadline = time.monotonic() + timeout
    chunks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        chunks = httpx.get(f"{monitor.url}/v1/models/{MODEL}/chunks", timeout=30).json()
        done = all(
            sum(1 for c in chunks if c["version"] == v and c["labelled_rows"] == c["rows"]) >= n
            for v, n in expected.items()
        )
        if done:
            return chunks
        time.sleep(1.0)
    console.print("[yellow]analysis did not catch up before the timeout; showing what exists[/]")
    return chunks


def stored_count(monitor: Process, expected: int, timeout: float = 60) -> int:
    """Records of the model in the monitor, once `expected` arrived or `timeout` passed (the
    predictors ship asynchronously: the last request's records follow within a flush)."""
    deadline = time.monotonic() + timeout
    while True:
        versions = httpx.get(f"{monitor.url}/v1/models", timeout=30).json()
        stored = sum(int(v.get("records", 0)) for v in versions if v["model"] == MODEL)
        if stored >= expected or time.monotonic() > deadline:
            return stored
        time.sleep(0.5)


def progress_table(step: Step, phase: str) -> Table:
    t = Table(show_header=False, box=None)
    t.add_row("simulated time", step.sim_time.strftime("%Y-%m-%d %H:%M"))
    t.add_row("serving", phase)
    t.add_row("rows sent", f"{step.stats.rows_sent:,}")
    t.add_row("labels posted", f"{step.stats.labels_posted:,}")
    for version, n in step.stats.predictions.items():
        t.add_row(f"  scored by {version}", f"{n:,}")
    return t


def replay_through(
    monitor: MonitorProcess,
    routes: list[tuple[pd.Timestamp, Process]],
    step_seconds: float,
    before_switch: dict[str, str] | None = None,
    label_delay_hours: int = 4,
) -> tuple[Replayer, Sampler]:
    """Send each simulated day to the predictor live at that time. `before_switch[name]`:
    before routing to predictor `name`, wait until the monitor holds that version as
    known-good (a release is judged against a known-good version, so one must exist)."""
    schema = weather_schema()
    rows = time_split(load_weather(), schema).replay
    player = Replayer(
        rows,
        schema,
        monitor.url,
        step_seconds=step_seconds,
        labels_headers=monitor.headers("labels"),
        label_delay_hours=label_delay_hours,
    )
    sampler = Sampler(monitor.popen.pid)
    sampler.start()
    waits = dict(before_switch or {})

    def live(t: pd.Timestamp) -> Process:
        return [proc for start, proc in routes if t >= start][-1]

    def route(t: pd.Timestamp) -> str:
        proc = live(t)
        if proc.name in waits:
            with console.status(f"waiting for {waits[proc.name]} to pass probation"):
                wait_known_good(monitor, waits.pop(proc.name))
        return proc.url

    with Live(console=console, refresh_per_second=4, transient=True) as view:
        player.run(route, on_step=lambda s: view.update(progress_table(s, live(s.sim_time).name)))
    return player, sampler


def reference_auc(monitor: Process, versions: list[str]) -> dict[str, float]:
    out = {}
    for version in versions:
        reg = httpx.get(f"{monitor.url}/v1/models/{MODEL}/versions/{version}", timeout=30).json()
        auc = (reg.get("metrics") or {}).get("reference", {}).get("roc_auc")
        if auc is not None:
            out[version] = float(auc)
    return out


def print_verdict(chunks: list[dict[str, Any]], audit: list[dict[str, Any]], release: str) -> None:
    """One paragraph: what the monitor decided about the release, and the same-rows evidence."""
    mine = [c for c in chunks if c["version"] == release]
    gaps = estimation_errors(mine)
    acted = [
        a
        for a in audit
        if a.get("kind") in ("rollback", "dry-run-rollback") and a.get("fromVersion") == release
    ]
    if acted:
        first = acted[0]
        verb = "would roll back" if first["kind"] == "dry-run-rollback" else "rolled back"
        head = (
            f"[bold]Verdict:[/] the monitor {verb} {release} to {first.get('toVersion')} "
            f"(trigger: {first.get('trigger')})."
        )
    else:
        head = f"[bold]Verdict:[/] the monitor kept {release}."
    console.print(
        f"{head} On the same {len(mine)} live chunks, its estimated ROC AUC minus the "
        f"known-good version's is {gaps['cumulative_estimated_gap']} on average "
        f"(realized, once labels arrived: {gaps['cumulative_realized_gap']}); estimate MAE "
        f"vs realized: {gaps['live_estimate_mae']}."
    )


def print_decisions(audit: list[dict[str, Any]]) -> None:
    for entry in audit:
        if entry.get("kind") not in DECISION_KINDS:
            continue
        console.rule(f"[bold]{entry['kind']}[/] ({entry.get('mode', '')})")
        text = str(entry.get("message") or entry.get("reason") or "")
        console.print(text, markup=False)
        if entry.get("patch"):
            console.print("the exact JSON patch for the Deployment:")
            console.print_json(json.dumps(entry["patch"]))


def print_chunks(
    chunks: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    sim_times: dict[str, list[pd.Timestamp]],
    csv_path: Path,
) -> None:
    """The per-chunk table within 120 columns; every column of it in `csv_path`."""
    console.print(chunk_table(chunks, audit, sim_times))
    write_chunk_csv(chunk_rows(chunks, audit, sim_times), csv_path)
    console.print(f"per-chunk table, all columns: [bold]{csv_path}[/]")


def declare_candidate(monitor: MonitorProcess, version: str) -> None:
    """Before it serves: the monitor scores `version` on the known-good's rows."""
    url = f"{monitor.url}/v1/models/{MODEL}/candidates/{version}"
    httpx.put(url, headers=monitor.headers("operator"), timeout=30).raise_for_status()


def print_candidates(monitor: MonitorProcess) -> None:
    """Each candidate's verdict as the operator last stored it, with its evidence."""
    url = f"{monitor.url}/v1/models/{MODEL}/candidates"
    listing = httpx.get(url, headers=monitor.headers("operator"), timeout=30).json()
    for entry in listing.get("candidates", []):
        verdict = entry.get("verdict") or {}
        console.rule(f"[bold]candidate {entry['version']}[/] (scored before it served)")
        console.print(
            f"{verdict.get('verdict', 'no verdict yet')} ({verdict.get('reason', '')}): "
            f"{verdict.get('message', '')}",
            markup=False,
        )
        if verdict.get("chunks_needed"):
            console.print(f"about {verdict['chunks_needed']} more chunks would decide it")


@contextmanager
def two_versions(
    workdir: Path, tags: dict[str, str], first: str, second: str, monitor_env: dict[str, str]
) -> Iterator[tuple[MonitorProcess, Process, Process]]:
    """A fresh monitor, then a predictor per version, each registered before the next
    starts (registration order is revision order for the offline operator)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "monitor.db").unlink(missing_ok=True)
    token = new_token()
    monitor = start_monitor(workdir, token, extra_env=monitor_env)
    with running(monitor):
        one = start_predictor(workdir, tags[first], monitor.url, token, f"predictor-{first}")
        with running(one):
            wait_registered(monitor, version_of(tags[first]))
            two = start_predictor(workdir, tags[second], monitor.url, token, f"predictor-{second}")
            with running(two):
                wait_registered(monitor, version_of(tags[second]))
                console.print(f"monitor {monitor.url}; {first} {one.url}; {second} {two.url}")
                yield monitor, one, two


@app.command()
def demo(
    workdir: Path = typer.Option(REPO / "var" / "demo", help="Logs, the monitor's DB, reports."),
    release_date: str = typer.Option("2013-08-15", help="When the worse release goes live."),
    bad_release: str = typer.Option("no-key-features", help="The worse release to ship."),
    step_seconds: float = typer.Option(0.2, help="Wall seconds per simulated day."),
) -> None:
    """Train, build, serve, monitor, replay Jul-Dec 2013, show the verdict."""
    tags = ensure_models(["good", bad_release])
    build_bento()
    with two_versions(workdir, tags, "good", bad_release, {}) as (monitor, good, bad):
        declare_candidate(monitor, version_of(tags[bad_release]))
        player, sampler = replay_through(
            monitor,
            [
                (pd.Timestamp("2013-01-01", tz="UTC"), good),
                (pd.Timestamp(release_date, tz="UTC"), bad),
            ],
            step_seconds,
            before_switch={bad.name: version_of(tags["good"])},
        )
        expected = {v: n // 500 for v, n in player.stats.predictions.items()}
        chunks = wait_for_analysis(monitor, expected)
        sampler.stop()
        audit = httpx.get(f"{monitor.url}/v1/audit", params={"model": MODEL}, timeout=30).json()
        print_chunks(
            chunks, audit, player.stats.sim_times, workdir / "reports" / f"{MODEL}-chunks.csv"
        )
        print_candidates(monitor)
        print_decisions(audit)
        print_verdict(chunks, audit, version_of(tags[bad_release]))
        report = workdir / "reports" / f"{MODEL}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(httpx.get(f"{monitor.url}/reports/{MODEL}", timeout=120).text)
        console.print(f"HTML report: [bold]{report}[/]")
        console.print(
            f"monitor: peak RSS {sampler.peak_rss / 2**20:.0f} MiB, CPU {sampler.cpu_seconds:.1f} s"
        )


@app.command("replay")
def replay_cmd(
    workdir: Path = typer.Option(REPO / "var" / "replay"),
    out: Path = typer.Option(REPO / "bench" / "results" / "replay.json"),
    step_seconds: float = typer.Option(0.05, help="Wall seconds per simulated day."),
    label_delay_hours: int = typer.Option(
        4,
        min=1,
        help="Simulated hours to a label; --out's as_issued scores the estimates "
        "stored while labels were out (say 168: a week, a chunk's span).",
    ),
) -> None:
    """Measure: estimated vs realized per chunk, live and known-good shadow; losses; cost."""
    tags = ensure_models(["good", "retrain"])
    # Measuring only: no operator, so `good` stays the yardstick of every chunk (with the
    # operator, the retrain would become known-good after its probation).
    no_operator = {"MONITOR_OPERATOR": "false"}
    with two_versions(workdir, tags, "good", "retrain", no_operator) as (monitor, _, live):
        began = time.monotonic()
        poller = PendingPoller(f"{monitor.url}/v1/models/{MODEL}/chunks")
        poller.start()
        player, sampler = replay_through(
            monitor,
            [(pd.Timestamp("2013-01-01", tz="UTC"), live)],
            step_seconds,
            label_delay_hours=label_delay_hours,
        )
        expected = {v: n // 500 for v, n in player.stats.predictions.items()}
        chunks = wait_for_analysis(monitor, expected)
        poller.stop()
        sampler.stop()
        wall = time.monotonic() - began
        stored = stored_count(monitor, len(player.stats.prediction_ids))
        ref = reference_auc(monitor, list(player.stats.predictions))
    sent = len(player.stats.prediction_ids)
    errors = estimation_errors(chunks, ref)
    print_chunks(chunks, [], player.stats.sim_times, workdir / "reports" / f"{MODEL}-chunks.csv")
    summary = {
        "rows_sent": sent,
        "rows_stored": stored,
        "records_lost": sent - stored,
        "labels_posted": player.stats.labels_posted,
        "label_delay_hours": label_delay_hours,
        "chunks": len(chunks),
        "wall_seconds": round(wall, 1),
        "monitor_peak_rss_mib": round(sampler.peak_rss / 2**20),
        "monitor_cpu_seconds": round(sampler.cpu_seconds, 1),
        **errors,
    }
    table = Table(title="make replay - summary")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value}")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    as_issued = compare(poller.issued, chunks, ref)
    console.print(f"as issued, labels still out: {as_issued['summary']}")
    payload = {"summary": summary, "as_issued": as_issued, "chunks": chunks}
    out.write_text(json.dumps(payload, indent=1, default=str))
    console.print(f"figures: {out}")


if __name__ == "__main__":
    app()
