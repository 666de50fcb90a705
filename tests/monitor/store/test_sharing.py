"""Per-model analysis leases on both backends (monitor/store/sharing.py): claim, renew,
expiry, handover, a fair share per live replica, release; and the queue's probe."""

from __future__ import annotations

from monitor.store import Store, open_store
from tests.monitor.store.conftest import Where
from tests.monitor.store.samples import record

MODELS = [f"m{i}" for i in range(6)]
S = 1_000_000  # microseconds
T0 = 1_900_000_000 * S  # a fixed clock: expiry is decided by the timestamps passed


def test_one_replica_holds_every_model_and_renews(store: Store) -> None:
    assert store.lease_holders() == {}  # nobody claimed yet (the table is made at first use)
    assert store.claim_models("a", MODELS, 30, now_us=T0) == MODELS
    # renewed at T0+20s: still held at T0+45s (past the first expiry, before the renewed one)
    assert store.claim_models("a", MODELS, 30, now_us=T0 + 20 * S) == MODELS
    assert store.claim_models("b", MODELS, 30, now_us=T0 + 45 * S) == []


def test_a_second_replica_gets_half_once_the_first_releases_its_surplus(store: Store) -> None:
    assert store.claim_models("a", MODELS, 30, now_us=T0) == MODELS
    assert store.claim_models("b", MODELS, 30, now_us=T0 + 1 * S) == []  # all held by a
    kept = store.claim_models("a", MODELS, 30, now_us=T0 + 2 * S)  # two live: share of 3
    assert len(kept) == 3
    taken = store.claim_models("b", MODELS, 30, now_us=T0 + 3 * S)
    assert sorted(kept + taken) == MODELS and not set(kept) & set(taken)


def test_a_dead_replicas_share_is_taken_after_the_lease_time(store: Store) -> None:
    store.claim_models("a", MODELS, 30, now_us=T0)
    store.claim_models("b", MODELS, 30, now_us=T0)
    a = store.claim_models("a", MODELS, 30, now_us=T0 + S)
    b = store.claim_models("b", MODELS, 30, now_us=T0 + S)
    assert len(a) == len(b) == 3
    # b stops renewing; before its leases expire a cannot take them ...
    assert store.claim_models("a", MODELS, 30, now_us=T0 + 20 * S) == a
    # ... after, a is the only live replica and takes them all
    assert store.claim_models("a", MODELS, 30, now_us=T0 + 32 * S) == MODELS


def test_release_hands_over_at_once(store: Store) -> None:
    store.claim_models("a", MODELS, 30, now_us=T0)
    store.release_models("a")
    assert store.claim_models("b", MODELS, 30, now_us=T0 + S) == MODELS


def test_leases_are_shared_by_two_store_instances(where: Where) -> None:
    """Two replicas = two stores on one database: a model is never held by both."""
    with open_store(where) as one, open_store(where) as two:
        one.claim_models("a", MODELS, 30)
        two.claim_models("b", MODELS, 30)
        held_a = one.claim_models("a", MODELS, 30)
        held_b = two.claim_models("b", MODELS, 30)
        assert held_a and held_b and not set(held_a) & set(held_b)
        assert set(one.lease_holders().values()) <= {"a", "b"}


def test_first_record_after_a_seq(store: Store) -> None:
    """The queue's probe: the receive time of the oldest record not yet in a chunk."""
    assert store.first_record_us("m", "v1", 0) is None
    store.append_records([record(i, timestamp=f"2013-07-01T0{i}:00:00Z") for i in range(4)])
    seqs = sorted(store.records_frame("m", "v1")["seq"])
    first = store.first_record_us("m", "v1", seqs[1])
    assert first == 1_372_636_800 * S + 2 * 3600 * S  # 2013-07-01T02:00:00Z, the third record
    assert store.first_record_us("m", "v1", seqs[-1]) is None
    assert store.first_record_us("m", "v2", 0) is None


def test_a_replica_keeps_the_models_it_names_first_when_it_must_give_some_up(
    store: Store,
) -> None:
    """The dispatcher names the models it is analysing first: those are never handed over."""
    store.claim_models("a", MODELS, 30, now_us=T0)
    store.claim_models("b", MODELS, 30, now_us=T0 + S)
    busy_first = ["m5", "m4", "m3", "m0", "m1", "m2"]
    assert store.claim_models("a", busy_first, 30, now_us=T0 + 2 * S) == ["m3", "m4", "m5"]
