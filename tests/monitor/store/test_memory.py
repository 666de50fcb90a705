"""Chunk evidence, operator state, the audit log and retention on both backends."""

from __future__ import annotations

import threading
from typing import Any

from monitor.memory.audit import AuditEntry
from monitor.store import Store, open_store
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests.monitor.store.samples import evidence, record
from tests.support.postgres import Where


def test_chunks_round_trip_and_upsert(store: Store) -> None:
    store.save_chunk(evidence(1, 0.8))
    store.save_chunk(evidence(0, 0.9))
    store.save_chunk(evidence(1, 0.7))  # re-analysis replaces
    store.save_chunk(evidence(0, 0.6, version="v2"))
    got = store.chunks("m", "v1")
    assert [c.chunk_index for c in got] == [0, 1]
    assert got[1] == evidence(1, 0.7)
    assert got[1].drifted_features == ["temp"]
    assert len(store.chunks("m")) == 3
    store.save_chunks([evidence(2, 0.5), evidence(0, 0.55)])  # one transaction, upserts
    assert [c.estimated["roc_auc"].value for c in store.chunks("m", "v1")] == [0.55, 0.7, 0.5]


def test_state_and_audit(store: Store) -> None:
    assert store.get_state("known_good/m") is None
    store.put_state("known_good/m", {"version": "v1", "revision": 2})
    store.update_state("known_good/m", lambda old: {**(old or {}), "revision": 3})
    assert store.get_state("known_good/m") == {"version": "v1", "revision": 3}
    store.update_state("known_good/m", lambda old: None)
    assert store.get_state("known_good/m") is None

    first = store.append_audit(AuditEntry("decision", "m", details={"action": "none"}))
    store.append_audit(AuditEntry("rollback", "m", details={"to": 2}))
    store.append_audit(AuditEntry("decision", "other"))
    assert [e["id"] for e in store.audit("m")] == [first, first + 1]
    assert [e["kind"] for e in store.audit()] == ["decision", "rollback", "decision"]
    assert len(store.audit(kind="decision")) == 2
    assert store.audit("m", limit=1)[0]["kind"] == "rollback"
    assert all("at" in e for e in store.audit())


def test_state_keys_list_the_keys_of_one_prefix(store: Store) -> None:
    # Each backend's own method (docs/contracts.md §4), not the protocol's: no caller lists keys.
    assert isinstance(store, SqliteStore | PostgresStore)
    store.put_state("known_good/m", {"version": "v1"})
    store.put_state("known_good/n", {"version": "v2"})
    store.put_state("rejected/m", {"versions": []})
    assert store.state_keys("known_good/") == ["known_good/m", "known_good/n"]
    assert store.state_keys() == ["known_good/m", "known_good/n", "rejected/m"]


def test_audit_entries_are_stored_flat_with_the_keys_earlier_releases_wrote(store: Store) -> None:
    entry = AuditEntry(
        "rejection-cleared", "m", version="v2", by="test", details={"reason": "relabelled"}
    )
    first = store.append_audit(entry)
    second = store.append_audit(AuditEntry("note", "m"))
    stored = store.audit("m")
    assert [e["id"] for e in stored] == [first, second] and second > first
    assert stored[0] == {"id": first, "at": stored[0]["at"], **entry.to_json()}
    assert stored[0]["time"] == entry.time and "at" in stored[1]


def test_update_state_is_atomic_under_concurrent_writers(where: Where) -> None:
    """Read-modify-write from many threads over two store instances (two monitor processes
    on one PostgreSQL; two connections to one SQLite file): no increment is lost."""
    threads, rounds = 4, 25
    with open_store(where) as first, open_store(where) as second:

        def bump(st: Any) -> None:
            for _ in range(rounds):
                st.update_state("counter", lambda old: {"n": (old or {"n": 0})["n"] + 1})

        workers = [
            threading.Thread(target=bump, args=(first if i % 2 else second,))
            for i in range(threads)
        ]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert first.get_state("counter") == {"n": threads * rounds}


def test_retention_deletes_old_records_with_their_labels_and_old_orphans(store: Store) -> None:
    day = 86_400 * 1_000_000
    t0 = 1_000 * day
    store.append_records([record(i) for i in range(7)])
    store.append_labels([{"prediction_id": f"p{i:06d}", "label": 1} for i in range(3)])
    store.append_labels([{"prediction_id": "never-served", "label": 1}])
    store.append_audit(AuditEntry("note", "m"))
    assert store.expire(86_400, batch_rows=3, now_us=t0).records == 0  # only marks the clock
    store.append_records([record(i) for i in range(7, 10)])
    done = store.expire(86_400, batch_rows=3, now_us=t0 + day + 1)
    assert (done.records, done.labels, done.orphan_labels) == (7, 3, 0)
    assert done.batches >= 3  # 7 rows in transactions of at most 3
    assert store.count_records("m", "v1") == 3
    assert set(store.records_frame("m", "v1")["prediction_id"]) == {
        "p000007",
        "p000008",
        "p000009",
    }
    assert [e["kind"] for e in store.audit("m")] == ["note"]
    late = store.expire(0, batch_rows=3)  # everything is old now (real clock)
    assert (late.records, late.orphan_labels) == (3, 1)
    assert store.count_records("m", "v1") == 0
