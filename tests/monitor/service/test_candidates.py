"""Declaring, withdrawing and listing candidates: what each call stores and audits, what it
refuses (changing nothing), and the verdict a listing gives."""

from __future__ import annotations

import pytest

from monitor.memory.candidates import CandidateState
from monitor.service import candidates
from monitor.service.errors import ConflictError, NotFoundError
from monitor.store.sqlite import SqliteStore
from tests.monitor.service.conftest import MODEL, audit_of, register
from tests.support.candidates import worse_chunks


def test_declaring_a_registered_version_stores_and_audits_it_once(store: SqliteStore) -> None:
    register(store, "v2")
    first = candidates.declare(store, MODEL, "v2")
    assert first.added and first.registration is None
    assert first.entry.sources == ("api",) and first.entry.added_by == "operator"
    again = candidates.declare(store, MODEL, "v2")
    assert not again.added and again.entry == first.entry
    [entry] = audit_of(store, "candidate-added")
    # the stored keys are the ones earlier releases wrote (no `time`: the store stamps `at`)
    assert set(entry) == {"id", "at", "kind", "model", "version", "by", "sources"}
    assert (entry["version"], entry["by"], entry["sources"]) == ("v2", "api", ["api"])


def test_an_unregistered_version_is_not_declared(store: SqliteStore) -> None:
    with pytest.raises(NotFoundError) as refused:
        candidates.declare(store, MODEL, "v9")
    assert refused.value.loc == "version" and "not registered" in refused.value.message
    assert CandidateState(store).entries(MODEL) == {}
    assert audit_of(store, "candidate-added") == []


def test_withdrawing_the_apis_declaration_audits_who_still_declares_it(store: SqliteStore) -> None:
    register(store, "v2")
    candidates.declare(store, MODEL, "v2")
    assert candidates.withdraw(store, MODEL, "v2") is True
    assert CandidateState(store).entries(MODEL) == {}
    [entry] = audit_of(store, "candidate-removed")
    assert set(entry) == {"id", "at", "kind", "model", "version", "by", "sources"}
    assert entry["sources"] == []
    with pytest.raises(NotFoundError):  # no longer a candidate
        candidates.withdraw(store, MODEL, "v2")


def test_a_candidate_a_modelmonitor_declares_is_not_withdrawn_here(store: SqliteStore) -> None:
    register(store, "v2")
    CandidateState(store).sync_spec(MODEL, ["v2"], backfill=0, at="2024-01-01T00:00:00Z")
    candidates.declare(store, MODEL, "v2")
    with pytest.raises(ConflictError) as refused:
        candidates.withdraw(store, MODEL, "v2")
    assert refused.value.loc == "version" and "spec.candidates" in refused.value.message
    assert set(CandidateState(store).entries(MODEL)["v2"].sources) == {"api", "spec"}
    assert audit_of(store, "candidate-removed") == []


def test_a_listing_computes_the_verdict_no_operator_stored(store: SqliteStore) -> None:
    register(store, "v1")
    register(store, "v2")
    candidates.declare(store, MODEL, "v2")
    CandidateState(store).save_chunks(MODEL, "v2", worse_chunks())
    [info] = candidates.listing(store, MODEL).candidates
    assert info.version == "v2" and info.sources == ["api"]
    assert info.verdict is not None
    assert info.verdict.verdict == "Worse" and info.verdict.baseline_version == "v1"
    assert (info.verdict.chunks, info.verdict.rows) == (4, 2000)


def test_a_listing_prefers_the_operators_verdict_unless_it_is_unreadable(
    store: SqliteStore,
) -> None:
    register(store, "v1")
    register(store, "v2")
    candidates.declare(store, MODEL, "v2")
    state = CandidateState(store)
    state.save_chunks(MODEL, "v2", worse_chunks())
    [computed] = candidates.listing(store, MODEL).candidates
    assert computed.verdict is not None
    stored = {**computed.verdict.model_dump(), "verdict": "Better", "reason": "BetterOnSameRows"}
    state.set_verdicts(MODEL, {"v2": stored})
    [info] = candidates.listing(store, MODEL).candidates
    assert info.verdict is not None and info.verdict.verdict == "Better"
    state.set_verdicts(MODEL, {"v2": {"verdict": "Better"}})  # unreadable: computed again
    [info] = candidates.listing(store, MODEL).candidates
    assert info.verdict is not None and info.verdict.verdict == "Worse"


def test_listing_an_unknown_model_is_refused_a_known_one_may_be_empty(store: SqliteStore) -> None:
    with pytest.raises(NotFoundError) as refused:
        candidates.listing(store, "nope")
    assert refused.value.loc == "model"
    register(store, "v1")
    assert candidates.listing(store, MODEL).candidates == []
    assert candidates.listings(store) == []  # only models that have candidates
    register(store, "v2")
    candidates.declare(store, MODEL, "v2")
    assert [lst.model for lst in candidates.listings(store)] == [MODEL]
