"""Several monitor replicas, one leader: two real monitor processes on one real PostgreSQL
store, both against kmock's Kubernetes emulator over HTTP (a kubeconfig points them there),
electing a leader with a `coordination.k8s.io/v1` Lease. Both analyse, each its share of
the models (per-model leases in the database, monitor/store/sharing.py); only the leader
reconciles, so each bad release is still rolled back exactly once.

What the emulator cannot prove, and how the tests deal with it (docs/monitor.md#several-replicas):
- kmock checks no resourceVersion; `tests.support.kube.ModelguardEmulator` answers a merge
  patch carrying a stale `metadata.resourceVersion` with 409 and gives created objects a
  resourceVersion, as a real API server does. The election relies on both: without them two
  replicas that read the same expired Lease would both "win" the takeover.
- kmock answers a create with 200, not 201 (the official client accepts either), and a
  create of an existing name with 409, as a real server does.
- kmock has no PUT, so the elector updates with merge patches (correct on a real server too).
- kmock has no Deployment controller: the test renumbers ReplicaSets after each rollout
  (`simulate_controller`), as in test_operator_kmock.py.
- Clock skew between nodes cannot happen here: both replicas share this machine's clock.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor.kube.lease import LeaseElector
from monitor.kube.rollout import VERSION_ANNOTATION
from monitor.store import open_store
from replay.launcher import MonitorProcess
from tests.support.kube import (
    DEPLOYMENTS,
    EVENTS,
    MODEL,
    KubeEmulator,
    create_deployment,
    create_modelmonitor,
    deploy,
    kube_emulator,
    simulate_controller,
)
from tests.support.monitor import RoleAuth, register_as, running_monitor
from tests.support.postgres import pg_cluster, pg_database_url  # noqa: F401 (fixtures)

NS, DEP, MM = "ml", "predictor", "rain"
OTHER = "other_model"  # a second model, so that each replica has a share to analyse
GOOD, BAD1, BAD2 = "good-1111", "bad-2222", "bad-3333"
LEASES = "coordination.k8s.io/v1/leases"
LEASE_NAME = "modelguard-monitor"
LEASE_SECONDS, RENEW_SECONDS, RECONCILE_SECONDS = 3.0, 1.0, 1.0
ANALYSIS_SECONDS = 1.0  # the analysis loop's interval; its per-model leases last LEASE_SECONDS
# The issue's bound: a dead leader's work resumes within the lease duration plus one
# reconcile interval. The margin on top covers the follower's renew period (it notices the
# expiry at its next try) and a loaded 2-core CI machine; it is not a performance target.
FAILOVER_BOUND = LEASE_SECONDS + RECONCILE_SECONDS + RENEW_SECONDS + 6.0


@dataclass(frozen=True)
class Where:
    """The shared database as the store's settings name it."""

    db_path: Path
    database_url: str


def write_kubeconfig(path: Path, server: str) -> Path:
    cluster = {"name": "kmock", "cluster": {"server": server}}
    context = {"name": "t", "context": {"cluster": "kmock", "user": "t", "namespace": NS}}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "t", "user": {}}],
                "contexts": [context],
                "current-context": "t",
            }
        )
    )
    return path


def gauge(monitor: MonitorProcess, name: str, **labels: str) -> float | None:
    """The sum of `name`'s samples whose labels include `labels` on the monitor's /metrics;
    None when the monitor does not answer."""
    try:
        text = httpx.get(f"{monitor.url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def leader(monitor: MonitorProcess) -> float | None:
    return gauge(monitor, "modelguard_monitor_leader")


def rollbacks(monitor: MonitorProcess) -> float | None:
    return gauge(monitor, "modelguard_rollbacks_total", trigger="gate", mode="auto")


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Poll `check` until true; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def second_name(first: str) -> str:
    return "monitor-b" if first == "monitor-a" else "monitor-a"


def live_version(kube: KubeEmulator) -> str:
    dep = kube.get(DEPLOYMENTS, NS, DEP)
    return str(dep["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION])


def rollbacks_applied(kube: KubeEmulator) -> int:
    """How often the Deployment's template went from another version back to GOOD."""
    return sum(1 for a, b in itertools.pairwise(kube.history(NS, DEP)) if a != b and b == GOOD)


class Sender:
    """Posts records to every live monitor in turn until stopped; remembers what each
    acknowledged (202). A monitor that is gone just fails its requests."""

    def __init__(self, monitors: list[MonitorProcess]) -> None:
        self.monitors = monitors
        self.acked: dict[int, list[str]] = {port: [] for port in (m.port for m in monitors)}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sender")

    def _run(self) -> None:
        clients = [
            httpx.Client(base_url=m.url, timeout=10, auth=RoleAuth(m)) for m in self.monitors
        ]
        try:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                monitor, client = self.monitors[i % 2], clients[i % 2]
                model = (MODEL, OTHER)[(i // 2) % 2]
                ids = [uuid.uuid4().hex for _ in range(50)]
                records = [
                    {
                        "prediction_id": pid,
                        "model": model,
                        "version": GOOD,
                        "timestamp": "2013-08-01T00:00:00+00:00",
                        "features": {"temp": float(n), "origin": "JFK"},
                        "probability": 0.5,
                        "predicted_class": 1,
                    }
                    for n, pid in enumerate(ids)
                ]
                with contextlib.suppress(httpx.HTTPError):
                    if client.post("/v1/records", json={"records": records}).status_code == 202:
                        self.acked[monitor.port].extend(ids)
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    def __enter__(self) -> Sender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def env(identity: str, kubeconfig: Path, database_url: str) -> dict[str, str]:
    return {
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_KUBERNETES": "kubeconfig",
        "MONITOR_KUBECONFIG": str(kubeconfig),
        "MONITOR_NAMESPACE": NS,
        "MONITOR_LEADER_ELECTION": "true",
        "MONITOR_LEADER_IDENTITY": identity,
        "MONITOR_LEASE_DURATION_SECONDS": f"{LEASE_SECONDS:g}",
        "MONITOR_LEASE_RENEW_SECONDS": f"{RENEW_SECONDS:g}",
        "MONITOR_ANALYSIS_WORKER": "false",  # analysis in a thread: fewer processes
        "MONITOR_ANALYSIS_LEASE_SECONDS": f"{LEASE_SECONDS:g}",
        "MONITOR_CHUNK_SIZE": "200",
    }


def analysed(store: Any) -> dict[str, int]:
    """model -> chunks stored for its GOOD version."""
    return {m: len(store.chunks(m, GOOD)) for m in (MODEL, OTHER)}


def test_one_leader_and_a_failover_without_a_second_rollback(
    tmp_path: Path, registrations: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    database_url = request.getfixturevalue("pg_database_url")  # a fresh database
    where = Where(tmp_path / "unused.db", database_url)
    with kube_emulator() as kube:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
        create_deployment(kube, NS, DEP, [GOOD])
        create_modelmonitor(
            kube,
            NS,
            MM,
            {
                "model": MODEL,
                "mode": "auto",
                "targetRef": {"kind": "Deployment", "name": DEP},
                "knownGood": GOOD,
                "cooldown": "1s",
            },
        )
        with (
            running_monitor(
                tmp_path / "a",
                env=env("monitor-a", kubeconfig, database_url),
                analysis_interval_seconds=ANALYSIS_SECONDS,
                reconcile_interval_seconds=RECONCILE_SECONDS,
            ) as a,
            running_monitor(
                tmp_path / "b",
                env=env("monitor-b", kubeconfig, database_url),
                analysis_interval_seconds=ANALYSIS_SECONDS,
                reconcile_interval_seconds=RECONCILE_SECONDS,
            ) as b,
            open_store(where) as store,
        ):
            monitors = {"monitor-a": a, "monitor-b": b}
            # exactly one leader, and the Lease names it
            wait_for(
                "exactly one leader",
                lambda: sorted([leader(a), leader(b)]) == [0.0, 1.0],  # type: ignore[type-var]
                timeout=LEASE_SECONDS + 20,
            )
            holder = kube.get(LEASES, NS, LEASE_NAME)["spec"]["holderIdentity"]
            first = monitors[holder]
            second = b if first is a else a
            assert (leader(first), leader(second)) == (1.0, 0.0)

            # registrations through one replica are the other's too (one store)
            register_as(first, registrations["good"], GOOD)
            register_as(second, registrations["no-key-features"], BAD1, BAD2)
            register_as(first, registrations["good"].model_copy(update={"model": OTHER}), GOOD)

            with Sender([a, b]) as sender:
                # the leader rolls the first bad release back (the release gate: its own
                # hold-out ROC AUC is far below the known-good's on the same rows)
                deploy(kube, NS, DEP, BAD1)
                wait_for("BAD1 rolled back", lambda: live_version(kube) == GOOD, timeout=60)
                simulate_controller(kube, NS, DEP)
                assert rollbacks(first) == 1.0 and rollbacks(second) == 0.0
                wait_for(
                    "both replicas acknowledged records",
                    lambda: all(len(ids) >= 500 for ids in sender.acked.values()),
                    timeout=60,
                )
                # both replicas analyse: each holds one of the two models, and both have
                # chunks analysed
                wait_for(
                    "each replica analysing its share",
                    lambda: (
                        len(set(store.lease_holders().values())) == 2
                        and all(n > 0 for n in analysed(store).values())
                    ),
                    timeout=60,
                )
                holders = store.lease_holders()
                mine = next(m for m, h in holders.items() if h.startswith(f"{holder}/"))
                before = analysed(store)[mine]

                # kill -9 the leader; a second bad release arrives while nobody leads
                killed = time.monotonic()
                first.kill()
                deploy(kube, NS, DEP, BAD2)
                wait_for("the other replica leads", lambda: leader(second) == 1.0, FAILOVER_BOUND)
                took_over = time.monotonic() - killed
                wait_for(
                    "BAD2 rolled back",
                    lambda: live_version(kube) == GOOD,
                    timeout=max(0.0, FAILOVER_BOUND - (time.monotonic() - killed)),
                )
                rolled_back = time.monotonic() - killed
                simulate_controller(kube, NS, DEP)
                acked_after = len(sender.acked[second.port])
                wait_for(
                    "the new leader keeps acknowledging records",
                    lambda: len(sender.acked[second.port]) > acked_after + 200,
                    timeout=30,
                )
                # the killed replica's model is analysed by the survivor within the lease
                wait_for(
                    "the survivor analysing the killed replica's model",
                    lambda: (
                        set(store.lease_holders()) == {MODEL, OTHER}
                        and {h.split("/")[0] for h in store.lease_holders().values()}
                        == {second_name(holder)}
                        and analysed(store)[mine] > before
                    ),
                    timeout=LEASE_SECONDS + ANALYSIS_SECONDS + 30,
                )
                time.sleep(RECONCILE_SECONDS * 3)  # a few more passes of the new leader

            print(f"failover: leader after {took_over:.2f}s, rollback after {rolled_back:.2f}s")
            assert kube.get(LEASES, NS, LEASE_NAME)["spec"]["holderIdentity"] != holder
            assert rollbacks(second) == 1.0  # the new leader did BAD2's, and only that one

            # the killed replica comes back (same pod name) as a follower; the leader's clean
            # shutdown releases the Lease and the other takes over
            first.start(timeout=60)
            assert leader(first) == 0.0 and leader(second) == 1.0
            stopped = time.monotonic()
            second.stop()
            wait_for("the restarted replica leads", lambda: leader(first) == 1.0, FAILOVER_BOUND)
            print(f"after a clean shutdown: leader after {time.monotonic() - stopped:.2f}s")
            assert "released Lease" in second.log()
            assert kube.get(LEASES, NS, LEASE_NAME)["spec"]["holderIdentity"] == holder
            time.sleep(RECONCILE_SECONDS * 2)  # its passes find nothing left to do

        # exactly one rollback per bad release, overall: one patch each
        assert kube.patches("deployments") == 2
        assert rollbacks_applied(kube) == 2
        rolled = [e for e in kube.list_objects(EVENTS, NS) if e.get("reason") == "RolledBack"]
        assert len(rolled) == 2
        with open_store(where) as store:
            audit = store.audit(model=MODEL, kind="rollback")
            assert sorted(entry["fromVersion"] for entry in audit) == [BAD1, BAD2]
            assert store.get_state(f"pending_rollback/{NS}/{MM}") == {}
            stored = set(store.records_frame(MODEL, GOOD)["prediction_id"]) | set(
                store.records_frame(OTHER, GOOD)["prediction_id"]
            )
        # no acknowledged record is lost, whichever replica acknowledged it
        for port, ids in sender.acked.items():
            assert set(ids) <= stored, f"{len(set(ids) - stored)} records acked on :{port} lost"


def test_electors_race_for_one_lease_and_a_clean_release_hands_it_over() -> None:
    """The elector against the emulator over HTTP: of two replicas that read the same Lease,
    one write lands (409 for the other); an expired Lease is taken over; a released one at
    once. Time is the electors' injected clock: nothing sleeps."""
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]

    def clock() -> datetime:
        return now[0]

    with kube_emulator() as kube:
        a, b = (
            LeaseElector(
                kube.api_client(),
                name=LEASE_NAME,
                namespace=NS,
                identity=who,
                duration_seconds=LEASE_SECONDS,
                clock=clock,
            )
            for who in ("monitor-a", "monitor-b")
        )
        assert a.try_acquire_or_renew().action == "create"
        assert b.try_acquire_or_renew().action == "wait"
        assert b.read() is not None and b.read().holder == "monitor-a"  # type: ignore[union-attr]
        # a create when another replica created the Lease first: 409 on create
        fresh = LeaseElector(
            kube.api_client(), name="other", namespace=NS, identity="x", duration_seconds=3
        )
        fresh.try_acquire_or_renew()
        assert fresh.read() is not None
        late = LeaseElector(
            kube.api_client(), name="other", namespace=NS, identity="y", duration_seconds=3
        )
        late.read = lambda: None  # type: ignore[method-assign]  # it read before x created it
        lost = late.try_acquire_or_renew()
        assert (lost.held, lost.action) == (False, "lost-race")

        # expiry: a takes over an expired Lease only after renewTime + duration
        now[0] += timedelta(seconds=LEASE_SECONDS)
        assert not b.try_acquire_or_renew().held
        now[0] += timedelta(seconds=0.5)
        stale = b.read()  # b and a both read the expired Lease ...
        assert a.try_acquire_or_renew().action == "renew"  # ... a (its holder) renews first
        b.read = lambda: stale  # type: ignore[method-assign]  # b acts on its stale read
        raced = b.try_acquire_or_renew()
        assert (raced.held, raced.action) == (False, "lost-race")  # 409 on the stale version
        del b.read
        assert kube.get(LEASES, NS, LEASE_NAME)["spec"]["holderIdentity"] == "monitor-a"

        # a clean shutdown releases: the other replica takes it at its next try
        assert a.release()
        assert b.release() is False  # not b's to release
        taken = b.try_acquire_or_renew()
        assert (taken.held, taken.action) == (True, "take")
        lease = kube.get(LEASES, NS, LEASE_NAME)["spec"]
        assert (lease["holderIdentity"], lease["leaseTransitions"]) == ("monitor-b", 1)


def test_leader_election_on_sqlite_refuses_to_start(tmp_path: Path) -> None:
    """The real process refuses to start, naming the settings."""
    from replay import launcher

    monitor = launcher.monitor(tmp_path, "t", env={"MONITOR_LEADER_ELECTION": "true"})
    with pytest.raises(RuntimeError) as info:
        monitor.start(timeout=60)
    assert "MONITOR_DATABASE_URL" in str(info.value) or "MONITOR_DATABASE_URL" in monitor.log()
