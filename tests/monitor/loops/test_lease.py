"""Leader election's pure parts: the Lease decision, expiry, the spec written, the settings,
and the timing of `LeaderElection` (when a replica may act) over a scripted elector.

The API side (reads, conditional writes, 409s) runs against kmock's emulator in
tests/integration/test_leader_failover.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from monitor.core.settings import (
    KubernetesSettings,
    LeadershipSettings,
    MonitorSettings,
    StoreSettings,
)
from monitor.core.times import micro_time
from monitor.kube.errors import ServerError
from monitor.kube.lease import Attempt, LeaseRecord, decide, expired, lease_spec
from monitor.loops.leadership import Always, LeaderElection, leader_of, leading
from monitor.metrics import process as metrics

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PG = SecretStr("postgresql://u@localhost/db")


def held(by: str | None, renewed_ago: float, duration: float | None = 15.0) -> LeaseRecord:
    return LeaseRecord(
        holder=by,
        renew_time=NOW - timedelta(seconds=renewed_ago),
        duration_seconds=duration,
        transitions=3,
        acquire_time=NOW - timedelta(hours=1),
        resource_version="42",
    )


@pytest.mark.parametrize(
    ("record", "action"),
    [
        (None, "create"),  # no Lease yet
        (held("me", 1), "renew"),
        (held("me", 60), "renew"),  # ours even if expired (a restart with the same pod name)
        (held("other", 1), "wait"),
        (held("other", 15), "wait"),  # exactly at the end of the duration: still valid
        (held("other", 15.001), "take"),  # expired
        (held(None, 1), "take"),  # released on shutdown
        (held("other", 20, duration=30), "wait"),  # the Lease's own duration wins
        (held("other", 20, duration=None), "take"),  # no duration in it: ours (15 s)
        (LeaseRecord("other", None, 15), "take"),  # never renewed
    ],
)
def test_decide(record: LeaseRecord | None, action: str) -> None:
    assert decide(record, "me", NOW, default_duration=15.0) == action


def test_expiry_is_renew_time_plus_duration() -> None:
    record = held("other", 0, duration=3)
    assert not expired(record, NOW + timedelta(seconds=3), 15)
    assert expired(record, NOW + timedelta(seconds=3, microseconds=1), 15)


def test_a_takeover_counts_a_transition_a_renewal_does_not() -> None:
    taken = lease_spec("take", held("other", 60), "me", NOW, 15)
    assert taken == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "renewTime": "2026-03-01T12:00:00.000000Z",
        "acquireTime": "2026-03-01T12:00:00.000000Z",
        "leaseTransitions": 4,
    }
    renewed = lease_spec("renew", held("me", 5), "me", NOW, 15)
    assert renewed == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "renewTime": "2026-03-01T12:00:00.000000Z",
    }
    created = lease_spec("create", None, "me", NOW, 2.6)
    assert (created["leaseTransitions"], created["leaseDurationSeconds"]) == (0, 3)


def test_the_lease_body_is_read_as_the_api_server_writes_it() -> None:
    record = LeaseRecord.from_body(
        {
            "metadata": {"name": "m", "resourceVersion": "7"},
            "spec": {
                "holderIdentity": "monitor-0",
                "leaseDurationSeconds": 15,
                "renewTime": "2026-03-01T12:00:00.123456Z",
                "acquireTime": "2026-03-01T11:00:00.000000+00:00",
                "leaseTransitions": 2,
            },
        }
    )
    assert record == LeaseRecord(
        holder="monitor-0",
        renew_time=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        duration_seconds=15.0,
        transitions=2,
        acquire_time=datetime(2026, 3, 1, 11, tzinfo=UTC),
        resource_version="7",
    )
    empty = LeaseRecord.from_body({"metadata": {}, "spec": {"holderIdentity": ""}})
    assert (empty.holder, empty.renew_time, empty.transitions) == (None, None, 0)
    assert micro_time(datetime(2026, 3, 1, 13, 0, tzinfo=UTC)) == "2026-03-01T13:00:00.000000Z"


# --- settings ------------------------------------------------------------------------------


def test_leader_election_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("POD_NAME", "MONITOR_LEADER_ELECTION", "MONITOR_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    defaults = MonitorSettings(kubernetes=KubernetesSettings(namespace="ml"))
    assert defaults.leadership.enabled is False
    assert (defaults.leadership.lease_name, defaults.effective_lease_namespace) == (
        "modelguard-monitor",
        "ml",
    )
    lease = defaults.leadership
    assert (lease.lease_duration_seconds, lease.lease_renew_seconds) == (15.0, 5.0)
    monkeypatch.setenv("POD_NAME", "monitor-7d9-abc")
    monkeypatch.setenv("MONITOR_LEADER_ELECTION", "true")
    monkeypatch.setenv("MONITOR_DATABASE_URL", PG.get_secret_value())
    monkeypatch.setenv("MONITOR_LEASE_NAMESPACE", "ops")
    monkeypatch.setenv("MONITOR_LEASE_DURATION_SECONDS", "3")
    monkeypatch.setenv("MONITOR_LEASE_RENEW_SECONDS", "1")
    settings = MonitorSettings()
    lease = settings.leadership
    assert lease.enabled and lease.identity == "monitor-7d9-abc"
    assert settings.effective_lease_namespace == "ops"
    assert (lease.lease_duration_seconds, lease.lease_renew_seconds) == (3.0, 1.0)


def test_leader_election_on_sqlite_is_refused_naming_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        MonitorSettings(
            store=StoreSettings(db_path=tmp_path / "m.db", database_url=None),
            leadership=LeadershipSettings(enabled=True),
        )
    assert "MONITOR_LEADER_ELECTION" in str(info.value)
    assert "MONITOR_DATABASE_URL" in str(info.value)


def test_a_renew_interval_not_below_the_duration_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        LeadershipSettings(lease_duration_seconds=3, lease_renew_seconds=3)
    assert "MONITOR_LEASE_RENEW_SECONDS" in str(info.value)


def test_without_election_or_without_an_api_server_this_process_always_leads() -> None:
    assert isinstance(leader_of(MonitorSettings()), Always)
    off = MonitorSettings(
        store=StoreSettings(database_url=PG),
        leadership=LeadershipSettings(enabled=True),
        kubernetes=KubernetesSettings(access="off"),
    )
    leader = leader_of(off)
    assert isinstance(leader, Always)
    leader.start()
    assert leader.is_leader()
    assert b"modelguard_monitor_leader 1.0" in metrics.METRICS.exposition()


# --- LeaderElection: when a replica may act -------------------------------------------------


@dataclass
class ScriptedElector:
    """Our own elector's surface with scripted outcomes (the API side is tested against
    the emulator): each try pops the next outcome, an exception is raised."""

    outcomes: list[Attempt | Exception]
    identity: str = "me"
    name: str = "modelguard-monitor"
    namespace: str = "ml"
    timeout_seconds: float = 1.0
    released: list[bool] = field(default_factory=list)

    def try_acquire_or_renew(self) -> Attempt:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def release(self) -> bool:
        self.released.append(True)
        return True


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def election(outcomes: list[Attempt | Exception]) -> tuple[LeaderElection, Monotonic, list[int]]:
    clock, woken = Monotonic(), []
    le = LeaderElection(
        ScriptedElector(outcomes),  # type: ignore[arg-type]
        duration_seconds=3.0,
        renew_seconds=1.0,
        on_acquired=lambda: woken.append(1),
        monotonic=clock,
    )
    return le, clock, woken


HELD, OTHER = Attempt(True, "me", "renew"), Attempt(False, "other", "wait")


def leader_gauge() -> float:
    return float(metrics.METRICS.leader._value.get())


def test_a_leader_acts_until_one_renew_interval_before_its_lease_would_expire() -> None:
    le, clock, woken = election([HELD, ServerError("503", 503), ServerError("503", 503)])
    assert not le.is_leader()
    le.step()
    assert le.is_leader() and woken == [1] and leader_gauge() == 1
    clock.now += 1.0
    le.step()  # renewal failed: still within duration - renew of the last success
    assert le.is_leader()
    clock.now += 1.0  # 2 s after the last successful write: 3 s lease - 1 s renew
    le.step()
    assert not le.is_leader() and leader_gauge() == 0
    assert woken == [1]


def test_losing_the_lease_to_another_stops_at_its_validity_acquiring_again_wakes() -> None:
    le, clock, woken = election([HELD, OTHER, OTHER, HELD])
    le.step()
    clock.now += 1.0
    le.step()  # someone else holds it now (we were partitioned): the old write still bounds us
    assert le.is_leader()
    clock.now += 1.5
    le.step()
    assert not le.is_leader()
    clock.now += 1.0
    le.step()
    assert le.is_leader() and woken == [1, 1]


def test_an_unexpected_error_never_stops_the_election() -> None:
    le, clock, _ = election([RuntimeError("boom"), HELD])
    le.step()
    assert not le.is_leader()
    clock.now += 1.0
    le.step()
    assert le.is_leader()


def test_stop_releases_a_held_lease_only() -> None:
    le, _, _ = election([HELD])
    le.step()
    le.stop()
    assert not le.is_leader() and le.elector.released == [True]  # type: ignore[attr-defined]
    follower, _, _ = election([OTHER])
    follower.step()
    follower.stop()
    assert follower.elector.released == []  # type: ignore[attr-defined]


def test_a_followers_pass_does_nothing() -> None:
    calls: list[int] = []
    state = {"leader": False}

    def work_once() -> int:
        calls.append(1)
        return 1

    work = leading(work_once, lambda: state["leader"])
    assert work is not None
    assert work() is None and calls == []
    state["leader"] = True
    assert work() == 1 and calls == [1]
    assert leading(None, lambda: True) is None
