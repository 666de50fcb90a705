"""Saved fitted analysis state (monitor/store/fits.py) on both backends."""

from __future__ import annotations

import pytest

from monitor.store import Store
from monitor.store.fits import KEEP_PER_VERSION
from monitor.store.types import UnknownVersionError
from tests.monitor.store.samples import registration


def test_fitted_state_round_trips_under_its_fingerprint_only(store: Store) -> None:
    store.register(registration("v1"))
    digest = store.registration_digest("m", "v1")
    assert len(digest) == 64
    state = bytes(range(256)) * 1000  # binary, not text: BLOB / BYTEA
    store.save_fitted_state("m", "v1", "fp-a", state)
    assert store.fitted_state("m", "v1", "fp-a") == state
    assert store.fitted_state("m", "v1", "fp-b") is None  # another fingerprint: a miss
    assert store.fitted_state("m", "v2", "fp-a") is None
    store.save_fitted_state("m", "v1", "fp-a", b"refitted")  # the same key replaced
    assert store.fitted_state("m", "v1", "fp-a") == b"refitted"
    with pytest.raises(UnknownVersionError):
        store.registration_digest("m", "nope")


def test_a_version_keeps_its_latest_fingerprints_and_the_one_just_saved(store: Store) -> None:
    store.register(registration("v1"))
    store.register(registration("v2"))
    store.save_fitted_state("m", "v2", "other-version", b"kept")
    names = [f"fp-{i}" for i in range(KEEP_PER_VERSION + 3)]
    for name in names:
        store.save_fitted_state("m", "v1", name, name.encode())
    kept = [n for n in names if store.fitted_state("m", "v1", n) is not None]
    assert names[-1] in kept and len(kept) == KEEP_PER_VERSION
    assert store.fitted_state("m", "v2", "other-version") == b"kept"
