"""Fitted state saved in the store and loaded instead of refitted (monitor/analysis/versions.py),
with real models on both backends, and a restarted real monitor process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.analysis import fitstate
from monitor.analysis.chunks import analyse_chunks
from monitor.analysis.intervals import DEFAULT_LEVEL
from monitor.analysis.versions import VersionCache
from monitor.store import open_store
from tests.support.monitor import RoleAuth, running_monitor
from tests.support.postgres import (  # noqa: F401 (fixtures)
    Where,
    backend_where_fixture,
    pg_cluster,
    pg_database_url,
)
from tests.support.records import served

MODEL = "rain_forecast"
CHUNK = 250


@pytest.fixture()
def store(backend_where: Where) -> Any:
    with open_store(backend_where) as st:
        yield st


def comparable(evidence: Any) -> dict[str, Any]:
    out: dict[str, Any] = evidence.to_dict()
    out.pop("analysed_at")
    return out


def test_a_loaded_fit_analyses_exactly_as_a_fresh_one(store, registrations, split) -> None:
    good, worse = registrations["good"], registrations["no-key-features"]
    store.register(good)
    store.register(worse)
    records, labels = served(split, worse, 0, 2 * CHUNK, "w")
    store.append_records(records)
    store.append_labels(labels[:CHUNK])
    rows = store.records_frame(MODEL, worse.version)

    fresh = VersionCache(store, CHUNK)
    fitted = [fresh.get(MODEL, worse.version), fresh.get(MODEL, good.version)]
    assert (fresh.fits, fresh.loads) == (2, 0)
    restarted = VersionCache(store, CHUNK)  # a restart, or another replica: nothing in memory
    loaded = [restarted.get(MODEL, worse.version), restarted.get(MODEL, good.version)]
    assert (restarted.fits, restarted.loads) == (0, 2)
    assert loaded[0] is not fitted[0]

    a = analyse_chunks(fitted[0], rows, 0, fitted[1], chunk_size=CHUNK)
    b = analyse_chunks(loaded[0], rows, 0, loaded[1], chunk_size=CHUNK)
    assert len(a) == 2 and a[0].known_good_version == good.version
    assert [comparable(e) for e in a] == [comparable(e) for e in b]
    assert fresh.sizing(MODEL, good.version, 0.05) == restarted.sizing(MODEL, good.version, 0.05)


def test_a_changed_input_or_an_unreadable_state_is_fitted_again(
    store, registrations, split
) -> None:
    good = registrations["good"]
    store.register(good)
    first = VersionCache(store, CHUNK)
    first.get(MODEL, good.version)
    other_size, other_level = VersionCache(store, CHUNK), VersionCache(store, CHUNK, 0.8)
    other_size.get(MODEL, good.version, CHUNK * 2)  # another chunk basis: another fit
    other_level.get(MODEL, good.version)  # another interval level: another fit
    assert (other_size.fits, other_level.fits) == (1, 1)
    assert other_size.loads == other_level.loads == 0

    digest = store.registration_digest(MODEL, good.version)
    key = fitstate.fingerprint("fit", digest, chunk_size=CHUNK, level=DEFAULT_LEVEL)
    store.save_fitted_state(MODEL, good.version, key, b"not a pickle")
    again = VersionCache(store, CHUNK)
    again.get(MODEL, good.version)
    assert (again.fits, again.loads) == (1, 0)  # unreadable: refitted and saved anew
    assert fitstate.load(store.fitted_state(MODEL, good.version, key), object) is not None


def test_the_cache_keeps_its_cap_and_loads_what_it_evicted(store, registrations) -> None:
    good, retrain = registrations["good"], registrations["retrain"]
    store.register(good)
    store.register(retrain)
    cache = VersionCache(store, CHUNK, max_versions=1)
    cache.get(MODEL, good.version)
    cache.get(MODEL, retrain.version)
    assert cache.cached() == [(MODEL, retrain.version, CHUNK)] and cache.evictions == 1
    cache.get(MODEL, good.version)  # evicted: loaded back from the store, not refitted
    assert (cache.fits, cache.loads) == (2, 1)
    assert cache.cached() == [(MODEL, good.version, CHUNK)]


def counter(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} is not exported")


def analysed(client: httpx.Client, want: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if len(client.get(f"/v1/models/{MODEL}/chunks").json()) >= want:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {want} chunks analysed")


def test_a_restarted_monitor_loads_the_fits_instead_of_refitting(
    tmp_path: Path, registrations: dict[str, Any], split: Any
) -> None:
    reg = registrations["good"]
    db = tmp_path / "monitor.db"
    env = {"MONITOR_CHUNK_SIZE": str(CHUNK)}
    fits, loads = (
        "modelguard_monitor_calculator_fits_total",
        "modelguard_monitor_calculator_loads_total",
    )
    for run in range(2):
        with (
            running_monitor(
                tmp_path / str(run), db_path=db, env=env, analysis_interval_seconds=1
            ) as mon,
            httpx.Client(base_url=mon.url, timeout=120, auth=RoleAuth(mon)) as client,
        ):
            if run == 0:
                body = reg.model_dump(by_alias=True, mode="json")
                assert client.post("/v1/models", json=body, headers=mon.auth).status_code == 201
            shipped, _ = served(split, reg, CHUNK * run, CHUNK, f"r{run}")
            assert client.post("/v1/records", json={"records": shipped}).status_code == 202
            analysed(client, run + 1)
            assert (counter(client, fits), counter(client, loads)) == (1 - run, run), mon.log()
