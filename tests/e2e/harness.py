"""The whole stack on one machine, for the end-to-end scenarios.

Real `bentoml serve` predictors (one per model version), the real monitor process talking to
kmock's Kubernetes emulator over HTTP (a kubeconfig file points it there), optionally a real
Prometheus scraping everything with the shipped rules, and the 2013 replay. The emulator has
no Deployment controller (docs/design.md), so the harness plays it: traffic goes to the predictor
of the version the Deployment's pod template declares *now*, and after every write to the
Deployment the ReplicaSet bookkeeping is redone (`simulate_controller`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from bentos.training.data import load_weather, time_split, weather_schema
from monitor.kube.rollout import VERSION_ANNOTATION
from replay import launcher
from replay.driver import Replayer, ReplayStats
from replay.launcher import MonitorProcess, Process, start_predictor
from replay.prometheus import start_prometheus
from replay.stack import new_token, version_of, wait_registered
from tests.support.kube import (
    DEPLOYMENTS,
    EVENTS,
    MODELMONITORS,
    KubeEmulator,
    create_deployment,
    create_modelmonitor,
    deploy,
    simulate_controller,
)

NS = "rain"
DEPLOYMENT = "predictor"
MONITOR_NAME = "rain"
MODEL = "rain_forecast"


def spec(**overrides: Any) -> dict[str, Any]:
    """The ModelMonitor the scenarios use: measured defaults, auto mode, short probation."""
    base: dict[str, Any] = {
        "model": MODEL,
        "targetRef": {"kind": "Deployment", "name": DEPLOYMENT},
        "mode": "auto",
        "chunkSize": 500,
        "probationChunks": 4,
        "cooldown": "1s",
    }
    base.update(overrides)
    return base


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server}}],
                "users": [{"name": "e2e", "user": {}}],
                "contexts": [
                    {"name": "e2e", "context": {"cluster": "kmock", "user": "e2e", "namespace": NS}}
                ],
                "current-context": "e2e",
            }
        )
    )
    return path


@dataclass
class Stack:
    workdir: Path
    kube: KubeEmulator
    tags: dict[str, str]  # release name -> BentoML tag
    token: str = field(default_factory=new_token)
    monitor: MonitorProcess | None = None
    monitor_up: bool = True
    _chunks_seen: int = 0
    predictors: dict[str, Process] = field(default_factory=dict)  # version -> process
    prometheus: Process | None = None
    exits: ExitStack = field(default_factory=ExitStack)

    # -- processes ---------------------------------------------------------------------
    def start_monitor(self) -> MonitorProcess:
        """Start (or restart, on the same port and database) the monitor."""
        if self.monitor is None:
            kubeconfig = write_kubeconfig(self.workdir / "kubeconfig", self.kube.url)
            self.monitor = launcher.monitor(
                self.workdir,
                self.token,
                env={
                    "MONITOR_KUBERNETES": "kubeconfig",
                    "MONITOR_KUBECONFIG": str(kubeconfig),
                    "MONITOR_NAMESPACE": NS,
                },
            )
        return self.monitor.restart()

    def start_predictor(self, release: str, service: str | None = None) -> Process:
        assert self.monitor is not None
        tag = self.tags[release]
        proc = start_predictor(
            self.workdir,
            tag,
            self.monitor.url,
            self.token,
            f"predictor-{release}",
            service=service or ".",
        )
        self.exits.callback(proc.stop)
        self.predictors[version_of(tag)] = proc
        wait_registered(self.monitor, version_of(tag))
        return proc

    def start_prometheus(self, labels: dict[str, str] | None = None) -> Process:
        """Prometheus scraping the monitor and every predictor; `labels` go on every series
        (e.g. {"namespace": NS}, as a ServiceMonitor's scrape adds)."""
        assert self.monitor is not None
        targets = {"modelguard-monitor": self.monitor.url}
        for version, proc in self.predictors.items():
            targets[f"modelguard-predictor-{version}"] = proc.url
        self.prometheus = start_prometheus(self.workdir / "prometheus", targets, labels=labels)
        self.exits.callback(self.prometheus.stop)
        return self.prometheus

    def close(self) -> None:
        self.exits.close()
        if self.monitor is not None:
            self.monitor.stop()

    # -- the cluster -------------------------------------------------------------------
    def create(self, first_release: str, monitor_spec: dict[str, Any]) -> None:
        create_deployment(self.kube, NS, DEPLOYMENT, [version_of(self.tags[first_release])])
        create_modelmonitor(self.kube, NS, MONITOR_NAME, monitor_spec)

    def launch(
        self, release: str, monitor_spec: dict[str, Any], service: str | None = None
    ) -> None:
        """The Deployment at `good` with its ModelMonitor, the monitor, and a predictor for
        `good` and one for `release` (optionally another serving variant)."""
        self.create("good", monitor_spec)
        self.start_monitor()
        self.start_predictor("good")
        self.start_predictor(release, service=service)

    def release_hook(self, name: str) -> Callable[[], None]:
        """A replay hook: once `good` has passed probation, `helm upgrade` to `name`."""
        good = version_of(self.tags["good"])

        def hook() -> None:
            self.wait_known_good(good)
            self.release(name)

        return hook

    def release(self, name: str) -> None:
        """`helm upgrade` to another model version (+ the controller's bookkeeping)."""
        deploy(self.kube, NS, DEPLOYMENT, version_of(self.tags[name]))

    def live_version(self) -> str:
        dep = self.kube.get(DEPLOYMENTS, NS, DEPLOYMENT)
        return str(dep["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION])

    def deployment(self) -> dict[str, Any]:
        return self.kube.get(DEPLOYMENTS, NS, DEPLOYMENT)

    def status(self) -> dict[str, Any]:
        return dict(self.kube.get(MODELMONITORS, NS, MONITOR_NAME).get("status") or {})

    def condition(self, kind: str) -> dict[str, Any]:
        for cond in self.status().get("conditions", []):
            if cond["type"] == kind:
                return dict(cond)
        return {}

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.kube.list_objects(EVENTS, NS) if e.get("reason") == reason]

    def wait_known_good(self, version: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status().get("knownGoodVersion") == version:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{version} never became known-good; status: {self.status()}")

    # -- traffic -----------------------------------------------------------------------
    def replay(
        self,
        until: str,
        *,
        hooks: dict[str, Callable[[], None]] | None = None,
        lockstep_from: str | None = None,
        step_seconds: float = 0.0,
        start: str = "2013-07-01",
    ) -> Replay:
        """Replay Jul-Dec 2013 from `start` to `until`, one simulated day per request.

        `hooks[date]` runs when the simulated clock reaches that date (a release, a crash).
        From `lockstep_from` on, each step waits until the monitor has stored every record
        sent, analysed every complete chunk and had two reconcile passes over a new chunk:
        the rollback delay is then counted in chunks, independent of this machine's speed.
        """
        assert self.monitor is not None
        schema = weather_schema()
        rows = time_split(load_weather(), schema).replay
        rows = rows[rows["time_hour"] >= pd.Timestamp(start, tz="UTC")]
        player = Replayer(
            rows,
            schema,
            self.monitor.url,
            step_seconds=step_seconds,
            labels_headers=self.monitor.headers("labels"),
        )
        pending = dict(sorted((hooks or {}).items()))
        timeline: list[tuple[pd.Timestamp, str]] = []
        lockstep = pd.Timestamp(lockstep_from, tz="UTC") if lockstep_from else None
        self.monitor_up = True

        def route(t: pd.Timestamp) -> str:
            for when in [d for d in pending if t >= pd.Timestamp(d, tz="UTC")]:
                pending.pop(when)()
            if lockstep is not None and t > lockstep and self.monitor_up:
                self.sync(len(player.stats.prediction_ids))
            simulate_controller(self.kube, NS, DEPLOYMENT)
            version = self.live_version()
            if not timeline or timeline[-1][1] != version:
                timeline.append((t, version))
            return self.predictors[version].url

        stats = player.run(route, until=pd.Timestamp(until, tz="UTC"))
        return Replay(stats, timeline)

    def sync(self, sent: int, timeout: float = 120) -> None:
        """Wait for the monitor to store `sent` records and analyse every complete chunk;
        after a new chunk, give the reconcile loop (1 s interval) two passes."""
        assert self.monitor is not None
        deadline = time.monotonic() + timeout
        while True:
            versions = httpx.get(f"{self.monitor.url}/v1/models", timeout=30).json()
            stored = sum(int(v["records"]) for v in versions)
            chunks = httpx.get(f"{self.monitor.url}/v1/models/{MODEL}/chunks", timeout=30).json()
            complete = sum(int(v["records"]) // 500 for v in versions)
            if stored >= sent and len(chunks) >= complete:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"monitor behind: stored {stored}/{sent}, chunks {len(chunks)}")
            time.sleep(0.2)
        if len(chunks) > self._chunks_seen:
            self._chunks_seen = len(chunks)
            time.sleep(2.5)

    def wait_analysed(self, timeout: float = 180) -> list[dict[str, Any]]:
        """Until every complete chunk of every version is analysed."""
        assert self.monitor is not None
        deadline = time.monotonic() + timeout
        while True:
            versions = httpx.get(f"{self.monitor.url}/v1/models", timeout=30).json()
            chunks = httpx.get(f"{self.monitor.url}/v1/models/{MODEL}/chunks", timeout=30).json()
            expected = {v["version"]: v["records"] // 500 for v in versions}
            got: dict[str, int] = {}
            for c in chunks:
                got[c["version"]] = got.get(c["version"], 0) + 1
            if all(got.get(v, 0) >= n for v, n in expected.items()):
                return list(chunks)
            if time.monotonic() > deadline:
                raise TimeoutError(f"analysis behind: expected {expected}, got {got}")
            time.sleep(1)

    def stored_records(self) -> int:
        assert self.monitor is not None
        versions = httpx.get(f"{self.monitor.url}/v1/models", timeout=30).json()
        return sum(int(v["records"]) for v in versions)

    def wait_stored(self, sent: int, timeout: float = 120) -> int:
        """Records still spooled in a predictor (after an outage) arrive within its backoff."""
        deadline = time.monotonic() + timeout
        while (stored := self.stored_records()) < sent and time.monotonic() < deadline:
            time.sleep(1)
        return stored

    def audit(self) -> list[dict[str, Any]]:
        assert self.monitor is not None
        resp = httpx.get(f"{self.monitor.url}/v1/audit", params={"model": MODEL}, timeout=30)
        resp.raise_for_status()
        return list(resp.json())


@dataclass
class Replay:
    stats: ReplayStats
    timeline: list[tuple[pd.Timestamp, str]]  # (simulated time, live version) at each change


@contextmanager
def stack(workdir: Path, kube: KubeEmulator, tags: dict[str, str]) -> Iterator[Stack]:
    s = Stack(workdir, kube, tags)
    try:
        yield s
    finally:
        s.close()
