"""The analysis queue (monitor/analysis/queue.py): oldest pending evidence first, never two
units of one model at once, and one busy model does not starve the others."""

from __future__ import annotations

from pathlib import Path

from monitor.analysis.cycle import UnitResult
from monitor.analysis.queue import Pending, WorkQueue, next_ready, order
from monitor.store import SqliteStore
from tests.monitor.store.samples import record, registration

S = 1_000_000


def test_oldest_evidence_first_whatever_the_model_name() -> None:
    units = [Pending(30 * S, "a", "v1"), Pending(10 * S, "z", "v1"), Pending(20 * S, "m", "v2")]
    assert [p.model for p in order(units)] == ["z", "m", "a"]


def test_a_model_in_flight_is_skipped_not_waited_for() -> None:
    queue = order([Pending(1, "a", "v1"), Pending(2, "a", "v2"), Pending(3, "b", "v1")])
    assert next_ready(queue, busy_models={"a"}) == Pending(3, "b", "v1")
    assert next_ready(queue, busy_models={"a", "b"}) is None
    assert next_ready(queue, busy_models=set()) == Pending(1, "a", "v1")


def _store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "m.db")
    for model in ("busy", "b", "c"):
        store.register(registration("v1") | {"model": model})
    return store


def _send(store: SqliteStore, model: str, start: int, n: int, hour: int) -> None:
    store.append_records(
        [
            record(
                start + i,
                model=model,
                prediction_id=f"{model}-{start + i}",
                timestamp=f"2013-07-01T{hour:02d}:{i % 60:02d}:00Z",
            )
            for i in range(n)
        ]
    )


def test_one_busy_model_does_not_starve_the_others(tmp_path: Path) -> None:
    """The busy model's first chunk is the oldest evidence: served first. It keeps receiving
    (ten chunks' worth each time); the others' one chunk each, older than its new rows, is
    served before its next unit."""
    store = _store(tmp_path)
    queue = WorkQueue()
    _send(store, "busy", 0, 10, hour=0)
    _send(store, "b", 0, 10, hour=1)
    _send(store, "c", 0, 10, hour=2)
    versions = {m: store.versions(m) for m in ("busy", "b", "c")}
    first = queue.pending(store, versions, {})
    assert [p.model for p in first] == ["busy", "b", "c"]

    served = []
    for _ in range(3):  # serve one unit, then the busy model gets 100 new rows at once
        unit = queue.pending(store, versions, {})[0]
        served.append(unit.model)
        top = int(store.records_frame(unit.model, "v1")["seq"].max())
        queue.done(unit.model, "v1", UnitResult([], after_seq=top, chunk_rows=10))
        if unit.model == "busy":
            _send(store, "busy", 1000 + len(served) * 100, 100, hour=3 + len(served))
    assert served == ["busy", "b", "c"]
    # and with the others served, the busy model's new chunks are next
    assert [p.model for p in queue.pending(store, versions, {})] == ["busy"]


def test_a_version_without_a_complete_chunk_is_not_pending(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _send(store, "b", 0, 10, hour=1)
    queue = WorkQueue()
    queue.done("b", "v1", UnitResult([], after_seq=0, chunk_rows=500))
    assert queue.pending(store, {"b": store.versions("b")}, {}) == []
    # a failed unit keeps its old marker: still not pending, retried by age when it is
    queue.done("b", "v1", UnitResult([], failed=True))
    assert queue.markers[("b", "v1")].chunk_rows == 500


def test_a_version_another_process_analysed_is_not_pending_again(tmp_path: Path) -> None:
    """After a restart or a handover the queue reads where the analysis stands from the store
    (chunks, chunking status, label clock): nothing new, nothing to do."""
    from dataclasses import replace

    from monitor.memory.state import ChunkingStatus, OperatorState
    from tests.monitor.store.samples import evidence

    store = _store(tmp_path)
    _send(store, "b", 0, 10, hour=1)
    seqs = sorted(store.records_frame("b", "v1")["seq"])
    chunk = replace(evidence(0, 0.8), model="b", rows=10, first_seq=seqs[0], last_seq=seqs[-1])
    store.save_chunks([chunk])
    OperatorState(store).set_chunking("b", "v1", ChunkingStatus("rows", 10, None, None, 0.025, 1))
    assert WorkQueue().pending(store, {"b": store.versions("b")}, {}) == []
    _send(store, "b", 100, 10, hour=2)  # a new complete chunk: pending again
    assert [p.model for p in WorkQueue().pending(store, {"b": store.versions("b")}, {})] == ["b"]
