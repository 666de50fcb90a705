"""The analysis queue: which model versions have pending work, oldest evidence first.

Why: one cycle over every model one after another lets one busy model (many new chunks, a
first fit) delay all the others. Here each version is a unit of its own (`cycle.analyse_unit`)
and the queue orders the versions with pending work by the age of their oldest pending
evidence (`order`), so a version that was just served goes behind those still waiting; the
loop (`monitor.loops.dispatch`) hands them to the workers, never two units of one model at
once (`next_ready`).

Pending work, decided as the cycle decides it (cycle.py, relabel.py, periods.py), from what
the version's last unit found (`Marker`, from its `UnitResult`):
- by rows: a complete chunk waits (`chunk_rows` records after the last chunked seq); its age
  is the receive time of its first record;
- by event time: records not in any chunk (a period may close by time alone), their age
  no older than the last look (an open period does not jump the queue at every pass);
- labels: the store's label clock moved past the version's, and some of its records'
  labels changed (new or corrected); aged from when the queue first saw it;
- a model with declared candidates: one unit per pass (they are scored on the baseline's
  chunks, `candidates.py`), as young as it gets;
- a version this process never served (a restart, a model handed over): its marker is read
  from the store (its chunks, chunking status, label clock); never analysed: pending, aged
  by its first record.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.analysis.cycle import UnitResult
from monitor.analysis.plan import ChunkPlan
from monitor.analysis.ports import QueueStore, VersionView
from monitor.analysis.relabel import RELABEL_LOOKBACK_CHUNKS
from monitor.memory.candidates import CandidateState
from monitor.memory.state import OperatorState


@dataclass(frozen=True, order=True)
class Pending:
    """One version with work waiting; `since_us`: its oldest pending evidence (epoch us)."""

    since_us: int
    model: str
    version: str


def order(pending: Iterable[Pending]) -> list[Pending]:
    """Oldest evidence first (ties: by model, then version, so the order is stable)."""
    return sorted(pending)


def next_ready(queue: Sequence[Pending], busy_models: set[str]) -> Pending | None:
    """The oldest unit whose model no worker is analysing now (a model's versions share its
    candidates and operator state: one at a time), None when every waiting model is busy."""
    return next((p for p in queue if p.model not in busy_models), None)


@dataclass(frozen=True)
class Marker:
    """Where a version's pending work starts, as of its last unit."""

    after_seq: int
    chunk_rows: int | None
    label_clock: int
    looked_us: int


@dataclass
class WorkQueue:
    """The markers of every version served (in memory: a restart looks at each once)."""

    markers: dict[tuple[str, str], Marker] = field(default_factory=dict)
    labels_seen_us: dict[tuple[str, str], int] = field(default_factory=dict)

    def done(self, model: str, version: str, result: UnitResult, now_us: int | None = None) -> None:
        """A unit finished: its version's pending work now starts where it left off (a failed
        unit keeps its old marker: retried at the next pass, at its place by age)."""
        if result.failed:
            return
        looked = _now_us() if now_us is None else now_us
        key = (model, version)
        self.markers[key] = Marker(result.after_seq, result.chunk_rows, result.label_clock, looked)
        self.labels_seen_us.pop(key, None)

    def pending(
        self,
        store: QueueStore,
        versions: Mapping[str, Sequence[VersionView]],
        plans: Mapping[str, ChunkPlan],
        now_us: int | None = None,
    ) -> list[Pending]:
        """The versions of `versions` (model -> its versions) with pending work, ordered."""
        now = _now_us() if now_us is None else now_us
        clock = int(store.label_clock())
        out: list[Pending] = []
        for model, infos in versions.items():
            found = [
                p
                for info in infos
                if info.registered_at and info.records
                if (p := self._version(store, model, info.version, plans, clock, now))
            ]
            if not found and CandidateState(store).entries(model):
                live = [i.version for i in infos if i.registered_at and i.records]
                if live:
                    found.append(Pending(now, model, live[-1]))
            out.extend(found)
        return order(out)

    def _version(
        self,
        store: QueueStore,
        model: str,
        version: str,
        plans: Mapping[str, ChunkPlan],
        clock: int,
        now: int,
    ) -> Pending | None:
        key = (model, version)
        mark = self.markers.get(key) or self._stored_marker(store, model, version)
        if mark is None:
            first = store.first_record_us(model, version, 0)
            return Pending(now if first is None else first, model, version)
        self.markers[key] = mark
        ages: list[int] = []
        plan = plans.get(model)
        by_period = plan is not None and plan.period is not None
        if mark.chunk_rows is not None and not by_period:
            if store.count_records(model, version, after_seq=mark.after_seq) >= mark.chunk_rows:
                first = store.first_record_us(model, version, mark.after_seq)
                ages.append(now if first is None else first)
        else:
            first = store.first_record_us(model, version, mark.after_seq)
            if first is not None:
                ages.append(max(first, mark.looked_us))
        if clock > mark.label_clock and store.label_changes(model, version, mark.label_clock):
            ages.append(self.labels_seen_us.setdefault(key, now))
        return Pending(min(ages), model, version) if ages else None

    @staticmethod
    def _stored_marker(store: QueueStore, model: str, version: str) -> Marker | None:
        """A version this process never served (a restart, a model handed over by another
        replica): its marker from what the store says was analysed (its chunks, chunking
        status and label clock), so it is not re-analysed from the start; None: never."""
        stored = store.chunks(model, version)
        status = OperatorState(store).chunking(model, version)
        if not stored or status is None:
            return None
        seen = store.chunk_labels_seen(model, version)
        recent = sorted(stored, key=lambda c: c.chunk_index)[-RELABEL_LOOKBACK_CHUNKS:]
        clock = min((seen.get(c.chunk_index, 0) for c in recent), default=0)
        after = max(c.last_seq for c in stored)
        return Marker(after, status.chunk_rows, clock, looked_us=0)


def _now_us() -> int:
    return int(time.time() * 1e6)


__all__ = ["Marker", "Pending", "WorkQueue", "next_ready", "order"]
