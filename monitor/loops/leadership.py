"""Which replica does the monitor's periodic work: always this one, or the Lease's holder.

`leader_of(settings)` builds it: `Always` (one replica; SQLite; no API server) or
`LeaderElection`, a daemon thread that tries to acquire or renew the Lease every
`lease_renew_seconds` (`monitor.kube.lease.LeaseElector`). `is_leader()` is what the loops ask
before every pass (`leading`): true only while the last successful write to the Lease is
younger than `lease_duration_seconds - lease_renew_seconds`, so a leader that cannot reach
the API server stops acting one renew interval before another replica may take over.
Transitions are logged and published as `modelguard_monitor_leader` (0/1); on acquiring,
`on_acquired` runs (the server wakes its reconcile loop: a takeover reconciles at once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from monitor.core.settings import MonitorSettings
from monitor.kube.client import api_client
from monitor.kube.errors import KubeError
from monitor.kube.lease import LeaseElector
from monitor.metrics import process as metrics

log = logging.getLogger("modelguard.monitor")


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Always:
    """No election: this process is the only one doing the periodic work (as before)."""

    def is_leader(self) -> bool:
        return True

    def start(self) -> None:
        metrics.set_leader(True)

    def stop(self) -> None:
        return None


class LeaderElection:
    """The Lease loop in a daemon thread; `is_leader()` is safe from any thread."""

    def __init__(
        self,
        elector: LeaseElector,
        *,
        duration_seconds: float,
        renew_seconds: float,
        on_acquired: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.elector = elector
        self.duration_seconds = duration_seconds
        self.renew_seconds = renew_seconds
        self.on_acquired = on_acquired
        self._monotonic = monotonic
        self._valid_until = 0.0  # monotonic: we act as leader until then
        self._leading = False  # what was last logged and published
        self._failures = 0
        self._holder_seen: str | None = None  # the last holder logged
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        return self._monotonic() < self._valid_until

    def start(self) -> None:
        metrics.set_leader(False)
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.renew_seconds)

    def step(self) -> None:
        """One try: acquire or renew, then publish and log what changed."""
        sent = self._monotonic()
        holder: str | None = None
        try:
            attempt = self.elector.try_acquire_or_renew()
        except KubeError as exc:
            self._failures += 1
            if self._leading:
                log.warning(
                    "leader election: renewing Lease %s/%s failed (%s, %d in a row)",
                    self.elector.namespace,
                    self.elector.name,
                    exc,
                    self._failures,
                )
            else:  # a follower: the first failure and then one in a minute or so
                level = logging.WARNING if self._failures % 60 == 1 else logging.DEBUG
                log.log(
                    level,
                    "leader election: Lease unreadable (%s, %d in a row)",
                    exc,
                    self._failures,
                )
        except Exception:  # never let the election thread die: the next try starts afresh
            self._failures += 1
            log.exception("leader election: try failed")
        else:
            self._failures = 0
            holder = attempt.holder
            if holder != self._holder_seen and holder is not None and not attempt.held:
                log.info("leader election: Lease %s held by %s", self.elector.name, holder)
            self._holder_seen = holder if holder is not None else self._holder_seen
            if attempt.held:
                with self._lock:
                    self._valid_until = sent + self.duration_seconds - self.renew_seconds
        self._transition(holder)

    def _transition(self, holder: str | None) -> None:
        leading = self.is_leader()
        if leading == self._leading:
            return
        self._leading = leading
        metrics.set_leader(leading)
        where = f"{self.elector.namespace}/{self.elector.name}"
        if leading:
            log.info("leader election: %s acquired Lease %s", self.elector.identity, where)
            if self.on_acquired is not None:
                self.on_acquired()
        else:
            log.warning(
                "leader election: %s lost Lease %s (holder now: %s); analysis, reconcile"
                " and retention pause",
                self.elector.identity,
                where,
                holder or "unknown",
            )

    def stop(self) -> None:
        """Stop trying and give the Lease up if held, so another replica takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.elector.timeout_seconds * 2 + 1)
        was_leader = self.is_leader()
        with self._lock:
            self._valid_until = 0.0
        self._leading = False
        metrics.set_leader(False)
        if not was_leader:
            return
        try:
            if self.elector.release():
                log.info(
                    "leader election: %s released Lease %s/%s",
                    self.elector.identity,
                    self.elector.namespace,
                    self.elector.name,
                )
        except KubeError as exc:
            log.warning("leader election: releasing the Lease failed (%s)", exc)


def leader_of(
    settings: MonitorSettings, on_acquired: Callable[[], None] | None = None
) -> Leadership:
    """`LeaderElection` when `MONITOR_LEADER_ELECTION` is on and an API server is configured;
    else `Always` (one replica, as without election)."""
    if not settings.leadership.enabled:
        return Always()
    client = api_client(settings.kubernetes.access, settings.kubernetes.kubeconfig)
    if client is None:
        log.warning(
            "MONITOR_LEADER_ELECTION=true but no Kubernetes API (MONITOR_KUBERNETES=%s):"
            " no Lease, this replica acts as the only leader",
            settings.kubernetes.access,
        )
        return Always()
    elector = LeaseElector(
        client,
        name=settings.leadership.lease_name,
        namespace=settings.effective_lease_namespace,
        identity=settings.leadership.identity,
        duration_seconds=settings.leadership.lease_duration_seconds,
        timeout_seconds=min(5.0, settings.leadership.lease_renew_seconds * 2),
    )
    log.info(
        "leader election on: Lease %s/%s as %s (duration %gs, renew every %gs)",
        elector.namespace,
        elector.name,
        elector.identity,
        settings.leadership.lease_duration_seconds,
        settings.leadership.lease_renew_seconds,
    )
    return LeaderElection(
        elector,
        duration_seconds=settings.leadership.lease_duration_seconds,
        renew_seconds=settings.leadership.lease_renew_seconds,
        on_acquired=on_acquired,
    )


def leading(
    work: Callable[[], Any] | None, is_leader: Callable[[], bool]
) -> Callable[[], Any] | None:
    """`work`, run only while this replica leads (a follower's pass does nothing)."""
    if work is None:
        return None

    def run() -> Any:
        if not is_leader():
            return None
        return work()

    return run
