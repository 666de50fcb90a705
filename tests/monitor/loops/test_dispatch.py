"""The analysis pass (monitor/loops/dispatch.py) over a real SQLite store: every pending
version served once, oldest evidence first, never two units of one model at the same time on
several slots, and two replicas (two holders) analysing disjoint shares of the models."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from monitor.analysis.cycle import UnitResult
from monitor.analysis.plan import ChunkPlan
from monitor.loops.dispatch import AnalysisDispatcher
from monitor.metrics.registry import MonitorMetrics
from monitor.store import SqliteStore
from tests.monitor.store.samples import record, registration

MODELS = ["m0", "m1", "m2", "m3"]


class Recording:
    """A unit runner that records what runs at once (the analysis itself is not the point)."""

    def __init__(self, store: SqliteStore, slots: int, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.store = store
        self.slots = slots
        self.running: set[tuple[str, str]] = set()
        self.overlaps: list[tuple[str, str]] = []
        self.max_parallel = 0
        self.lock = threading.Lock()

    def unit(self, slot: int, model: str, version: str, plan: ChunkPlan) -> UnitResult:
        with self.lock:
            if any(m == model for m, _ in self.running):
                self.overlaps.append((model, version))
            self.running.add((model, version))
            self.max_parallel = max(self.max_parallel, len(self.running))
        time.sleep(self.seconds)
        with self.lock:
            self.running.discard((model, version))
        top = int(self.store.records_frame(model, version)["seq"].max())
        return UnitResult([], after_seq=top, chunk_rows=10)


def _store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "m.db")
    for hour, model in enumerate(reversed(MODELS)):  # m3's evidence is the oldest
        for version in ("v1", "v2"):
            store.register(registration(version) | {"model": model})
            store.append_records(
                [
                    record(
                        i,
                        version,
                        model=model,
                        prediction_id=f"{model}{version}{i}",
                        timestamp=f"2013-07-01T{hour:02d}:{i:02d}:00Z",
                    )
                    for i in range(10)
                ]
            )
    return store


def _dispatcher(
    store: SqliteStore, runner: Recording, identity: str, lease: float = 30
) -> AnalysisDispatcher:
    return AnalysisDispatcher(
        store, runner, dict, MonitorMetrics(), identity=identity, chunk_size=10, lease_seconds=lease
    )


def test_every_pending_version_once_oldest_first_one_unit_per_model(tmp_path: Path) -> None:
    store = _store(tmp_path)
    runner = Recording(store, slots=3)
    dispatch = _dispatcher(store, runner, "a")
    dispatch()
    assert sorted(dispatch.served) == sorted((m, v) for m in MODELS for v in ("v1", "v2"))
    assert dispatch.served[0][0] == "m3"  # the oldest evidence
    assert runner.overlaps == []  # never two units of one model at once ...
    assert runner.max_parallel > 1  # ... while the slots did run in parallel
    dispatch()
    assert dispatch.served == []  # nothing new


def test_two_replicas_analyse_disjoint_shares(tmp_path: Path) -> None:
    store = _store(tmp_path)
    one = _dispatcher(store, Recording(store, 1), "a")
    two = _dispatcher(store, Recording(store, 1), "b")
    one()  # alone so far: all of them
    assert {m for m, _ in one.served} == set(MODELS)
    store.append_records(
        [
            record(i, "v1", model=m, prediction_id=f"late{m}{i}", timestamp="2013-07-02T00:00:00Z")
            for m in MODELS
            for i in range(10)
        ]
    )
    two()  # b is live now, but a still holds everything: b serves nothing
    assert two.served == []
    one()  # a keeps its share (half) and releases the rest
    kept_by_one = {m for m, _ in one.served}
    two()  # b takes the rest: their late chunks are b's to analyse
    held = store.lease_holders()
    assert sorted(held) == MODELS and len(set(held.values())) == 2
    assert {m for m, _ in two.served} == {m for m, h in held.items() if h == two.holder}
    assert kept_by_one == {m for m, h in held.items() if h == one.holder}  # nothing twice
    one.close()  # a stops: b takes its models at its next pass
    two()
    assert set(store.lease_holders().values()) == {two.holder}


def test_leases_are_renewed_while_a_unit_outlasts_them(tmp_path: Path) -> None:
    """A unit three times longer than the lease: the renewing thread keeps the model, and
    another replica's claims meanwhile get none of the models being analysed."""
    store = _store(tmp_path)
    slow = Recording(store, 1, seconds=4.5)
    one = _dispatcher(store, slow, "a", lease=1.5)
    other = SqliteStore(tmp_path / "m.db")
    passing = threading.Thread(target=one)
    passing.start()
    try:
        time.sleep(2.5)  # past the first claim's expiry
        for _ in range(4):
            taken = other.claim_models("b", MODELS, 1.5)
            busy = {m for m, _ in slow.running}
            assert not busy & set(taken)
            time.sleep(0.4)
    finally:
        passing.join()
        one.close()
        other.close()
