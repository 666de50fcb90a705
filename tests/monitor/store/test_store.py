"""The store on both backends (a SQLite file; a real PostgreSQL server): round trips,
idempotency, label joins, durability."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from monitor.core.evidence import ChunkEvidence, Estimate, FeatureDrift
from monitor.store import Store, open_store
from monitor.store.migrations import MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError
from monitor.store.sqlite import SqliteStore
from monitor.store.types import Conflict, NotFound
from tests.support.paths import REPO
from tests.support.postgres import pg_cluster, pg_database_url  # noqa: F401 (fixtures)


def record(i: int, version: str = "v1", **over: Any) -> dict[str, Any]:
    rec = {
        "prediction_id": f"p{i:06d}",
        "model": "m",
        "version": version,
        "timestamp": f"2013-07-01T{i % 24:02d}:00:00Z",
        "features": {"temp": 60.0 + i, "gust": None if i % 2 else 12.5, "origin": "EWR"},
        "probability": (i % 100) / 100,
        "predicted_class": i % 2,
    }
    rec.update(over)
    return rec


def registration(version: str = "v1", description: str = "") -> dict[str, Any]:
    return {
        "model": "m",
        "version": version,
        "learner": "xgboost",
        "release": "good",
        "description": description,
        "schema": {"features": [{"name": "temp"}, {"name": "gust"}, {"name": "missing_f"}]},
        "reference": [{"temp": 1.0, "label": 1, "probability": 0.5}],
        "artifact": base64.b64encode(b"booster-bytes").decode(),
        "artifact_format": "xgboost-ubj",
    }


BACKENDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class Where:
    """Where a backend's database is, as the settings name it."""

    db_path: Path
    database_url: str | None = None


@pytest.fixture(params=BACKENDS)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    if request.param == "postgres":
        return Where(tmp_path / "unused.db", request.getfixturevalue("pg_database_url"))
    return Where(tmp_path / "monitor.db")


@pytest.fixture
def store(where: Where) -> Any:
    with open_store(where) as st:
        yield st


def test_records_round_trip_into_a_typed_frame(store: Store) -> None:
    assert store.append_records([record(i) for i in range(5)]) == (5, 0)
    frame = store.records_frame("m", "v1")
    assert list(frame.columns[:7]) == [
        "seq",
        "prediction_id",
        "timestamp",
        "event_time",
        "probability",
        "predicted_class",
        "label",
    ]
    assert frame["prediction_id"].tolist() == [f"p{i:06d}" for i in range(5)]
    assert frame["seq"].is_monotonic_increasing
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["timestamp"].iloc[3] == pd.Timestamp("2013-07-01T03:00:00Z")
    assert (frame["event_time"] == frame["timestamp"]).all()  # no event time: received
    assert frame["temp"].tolist() == [60.0, 61.0, 62.0, 63.0, 64.0]
    assert frame["gust"].isna().tolist() == [False, True, False, True, False]
    assert frame["origin"].tolist() == ["EWR"] * 5
    assert frame["label"].dtype == "Int64" and frame["label"].isna().all()
    assert store.count_records("m", "v1") == 5
    assert store.count_records("m", "other") == 0


def test_frame_pages_by_seq_and_limit(store: Store) -> None:
    store.append_records([record(i) for i in range(10)])
    first = store.records_frame("m", "v1", limit=4)
    rest = store.records_frame("m", "v1", after_seq=int(first["seq"].iloc[-1]))
    assert len(first) == 4 and len(rest) == 6
    assert set(first["prediction_id"]).isdisjoint(rest["prediction_id"])


def test_duplicate_prediction_ids_are_ignored(store: Store) -> None:
    store.append_records([record(i) for i in range(3)])
    again = [record(1, probability=0.99), record(2), record(3), record(3)]
    assert store.append_records(again) == (1, 3)
    frame = store.records_frame("m", "v1")
    assert len(frame) == 4
    assert frame.loc[frame["prediction_id"] == "p000001", "probability"].item() == 0.01


def test_records_are_kept_apart_by_version(store: Store) -> None:
    store.append_records([record(i, "v1") for i in range(3)] + [record(9, "v2")])
    assert len(store.records_frame("m", "v1")) == 3
    assert store.records_frame("m", "v2")["prediction_id"].tolist() == ["p000009"]


def test_labels_join_whether_they_arrive_before_or_after_their_record(store: Store) -> None:
    early = store.append_labels_detailed([{"prediction_id": "p000003", "label": 1}])
    assert early.accepted == 1 and early.joined_by_model == {}
    result = store.append_records_detailed([record(i) for i in range(5)])
    assert result.labels_joined_by_model == {"m": 1}
    late = store.append_labels_detailed(
        [{"prediction_id": "p000001", "label": 0}, {"prediction_id": "p000004", "label": 1}]
    )
    assert late.joined_by_model == {"m": 2}
    frame = store.records_frame("m", "v1").set_index("prediction_id")
    assert frame["label"].isna().tolist() == [True, False, True, False, False]
    assert frame.loc["p000003", "label"] == 1 and frame.loc["p000001", "label"] == 0
    assert store.label_coverage("m", "v1") == (5, 3)


def test_labels_out_of_order_and_a_repeat_overwrites(store: Store) -> None:
    store.append_records([record(i) for i in range(6)])
    for i in (5, 0, 3, 1):
        store.append_labels([{"prediction_id": f"p{i:06d}", "label": 1}])
    store.append_labels([{"prediction_id": "p000003", "label": 0}])
    labels = store.records_frame("m", "v1")["label"]
    assert labels.fillna(-1).tolist() == [1, 1, -1, 0, -1, 1]


def test_oldest_unlabelled_record_drives_the_label_lag(store: Store) -> None:
    assert store.oldest_unlabelled_us("m") is None
    store.append_records([record(i) for i in range(4)])
    frame = store.records_frame("m", "v1").set_index("prediction_id")
    stamps = {pid: int(ts.value // 1000) for pid, ts in frame["timestamp"].items()}
    assert store.oldest_unlabelled_us("m") == min(stamps.values())
    store.append_labels([{"prediction_id": "p000000", "label": 1}])
    assert store.oldest_unlabelled_us("m") == min(v for k, v in stamps.items() if k != "p000000")
    store.append_labels([{"prediction_id": f"p{i:06d}", "label": 0} for i in range(1, 4)])
    assert store.oldest_unlabelled_us("m") is None


def test_empty_frame_has_the_contract_columns_and_registered_features(store: Store) -> None:
    store.register(registration())
    frame = store.records_frame("m", "v1")
    assert frame.empty
    assert {"seq", "timestamp", "label", "temp", "gust", "missing_f"} <= set(frame.columns)


def test_a_feature_never_received_is_a_missing_column(store: Store) -> None:
    store.register(registration())
    store.append_records([record(i) for i in range(3)])
    assert store.records_frame("m", "v1")["missing_f"].isna().all()


def test_registration_is_idempotent_and_conflicts_are_refused(store: Store) -> None:
    assert store.register(registration()) == "created"
    assert store.register(registration()) == "unchanged"
    with pytest.raises(Conflict):
        store.register(registration(description="changed"))
    assert store.artifact("m", "v1") == b"booster-bytes"
    reg = store.registration("m", "v1")
    assert "artifact" not in reg and reg["reference"][0]["temp"] == 1.0
    assert "reference" not in store.registration("m", "v1", with_reference=False)
    with pytest.raises(NotFound):
        store.artifact("m", "nope")
    with pytest.raises(NotFound):
        store.registration("m", "nope")


def test_versions_list_registered_and_record_only_versions(store: Store) -> None:
    store.register(registration("v1"))
    store.append_records([record(i, "v1") for i in range(3)] + [record(7, "v9")])
    infos = {v.version: v for v in store.versions("m")}
    assert infos["v1"].state == "registered" and infos["v1"].records == 3
    assert infos["v9"].state == "unregistered" and infos["v9"].registered_at is None
    store.put_state("known_good/m", {"version": "v1", "revision": 3})
    store.put_state("rejected/m", {"versions": [{"version": "v9", "reason": "gap"}]})
    infos = {v.version: v for v in store.versions()}
    assert infos["v1"].state == "known-good" and infos["v9"].state == "rejected"
    assert store.models() == ["m"]


def evidence(index: int, value: float, version: str = "v1") -> ChunkEvidence:
    return ChunkEvidence(
        model="m",
        version=version,
        chunk_index=index,
        rows=500,
        first_seq=index * 500 + 1,
        last_seq=(index + 1) * 500,
        start_time="2013-07-01T00:00:00+00:00",
        end_time="2013-07-08T00:00:00+00:00",
        estimated={"roc_auc": Estimate(value, value - 0.05, value + 0.05, alert=False)},
        drift=[FeatureDrift("temp", "jensen_shannon", 0.2, 0.1, True)],
        drift_ranking=[("temp", 0.8)],
    )


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
    assert store.state_keys("known_good/") == ["known_good/m"]
    store.update_state("known_good/m", lambda old: None)
    assert store.get_state("known_good/m") is None

    first = store.append_audit({"kind": "decision", "model": "m", "action": "none"})
    store.append_audit({"kind": "rollback", "model": "m", "to": 2})
    store.append_audit({"kind": "decision", "model": "other"})
    assert [e["id"] for e in store.audit("m")] == [first, first + 1]
    assert [e["kind"] for e in store.audit()] == ["decision", "rollback", "decision"]
    assert len(store.audit(kind="decision")) == 2
    assert store.audit("m", limit=1)[0]["kind"] == "rollback"
    assert all("at" in e for e in store.audit())


def test_clear_rejection_removes_the_version_and_audits_it(store: Store) -> None:
    store.put_state("rejected/m", {"versions": ["v2", "v3"]})
    assert store.clear_rejection("m", "v2", actor="test")
    assert store.rejected_versions("m") == ["v3"]
    assert not store.clear_rejection("m", "v2")
    assert store.audit("m")[-1]["kind"] == "rejection-cleared"
    assert len(store.audit("m")) == 1


def test_reopen_keeps_data_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    with SqliteStore(path) as st:
        st.append_records([record(i) for i in range(3)])
    with SqliteStore(path) as st:
        assert st.count_records("m", "v1") == 3
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNewError):
        SqliteStore(path)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from monitor.store import open_store
    class Where:
        db_path = Path(sys.argv[1])
        database_url = sys.argv[2] or None
    store = open_store(Where())
    batch = 0
    while True:
        rows = [
            {"prediction_id": f"b{batch}-{i}", "model": "m", "version": "v1",
             "timestamp": "2013-07-01T00:00:00Z", "features": {"x": i},
             "probability": 0.5, "predicted_class": 1}
            for i in range(200)
        ]
        store.append_records(rows)
        store.append_labels([{"prediction_id": f"b{batch}-0", "label": 1}])
        print(batch, flush=True)  # the acknowledgement: printed only after the commit
        batch += 1
    """
)


def test_acknowledged_writes_survive_kill_9(where: Where) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(where.db_path), where.database_url or ""],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        acked = -1
        for line in proc.stdout:
            acked = int(line)
            if acked >= 20:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with open_store(where) as st:
        stored = st.count_records("m", "v1")
        assert stored >= (acked + 1) * 200  # every acknowledged batch, maybe one more
        assert stored % 200 == 0  # never half a batch
        frame = st.records_frame("m", "v1")
        assert int(frame["label"].notna().sum()) >= acked + 1


def test_a_reader_sees_whole_batches_while_a_writer_appends(store: Store) -> None:
    batches, size = 40, 250
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for b in range(batches):
                store.append_records([record(b * size + i) for i in range(size)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    seen: list[int] = []
    while writer.is_alive() or not seen or seen[-1] < batches * size:
        n = len(store.records_frame("m", "v1"))
        assert n % size == 0, "a reader saw a partial transaction"
        seen.append(n)
        if not writer.is_alive() and n == batches * size:
            break
    writer.join()
    assert not errors
    assert seen == sorted(seen) and seen[-1] == batches * size


def test_a_frame_read_in_batches_equals_one_read_in_one_go(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [record(i) for i in range(23)]
    rows[20]["features"] = {"temp": 1.0, "late_feature": "x"}  # only in the last batch
    store.append_records(rows)
    store.append_labels([{"prediction_id": "p000007", "label": 1}])
    whole = store.records_frame("m", "v1")
    monkeypatch.setattr("monitor.store.sqlite._FRAME_BATCH_ROWS", 5)  # both backends
    batched = store.records_frame("m", "v1")
    pd.testing.assert_frame_equal(
        batched[whole.columns], whole, check_dtype=False, check_index_type=False
    )
    assert batched["label"].dtype == "Int64" and batched["label"].notna().sum() == 1


def test_group_commit_shares_one_transaction_and_isolates_a_failing_request(
    tmp_path: Path,
) -> None:
    from monitor.store.commit import GroupCommit

    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    lock = threading.RLock()
    group = GroupCommit(conn, lock)
    outcomes: dict[int, Any] = {}

    def insert(value: int) -> None:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (value,))
            if value == 2:
                c.execute("INSERT INTO t VALUES (?)", (value,))  # violates UNIQUE
            return value

        try:
            outcomes[value] = group.run(work)
        except sqlite3.IntegrityError as exc:
            outcomes[value] = exc

    with lock:  # hold the writer so that three requests queue up behind it
        threads = [threading.Thread(target=insert, args=(v,)) for v in (1, 2, 3)]
        for t in threads:
            t.start()
        while len(group._queue) < 3:
            threading.Event().wait(0.01)
    for t in threads:
        t.join()
    assert group.commits == 1
    assert outcomes[1] == 1 and outcomes[3] == 3
    assert isinstance(outcomes[2], sqlite3.IntegrityError)
    assert [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")] == [1, 3]


def test_a_database_written_before_event_times_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    """Schema version 1 as the previous monitor wrote it: migrated in place, nothing lost."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    conn.execute(
        "INSERT INTO records (prediction_id, model, version, ts_us, features, probability,"
        " predicted_class) VALUES ('old-1', 'm', 'v1', 1372636800000000, '{\"x\":1.0}', 0.3, 0)"
    )
    conn.execute(
        "INSERT INTO labels (prediction_id, label, label_ts_us, received_at)"
        " VALUES ('old-1', 1, NULL, '2013-07-01T00:00:00+00:00')"
    )
    conn.commit()
    conn.close()
    with SqliteStore(db) as store:
        (version,) = store._reader().execute("SELECT max(version) FROM schema_version").fetchone()
        assert version == SCHEMA_VERSION >= 2
        store.append_records(
            [
                {
                    "prediction_id": "new-1",
                    "model": "m",
                    "version": "v1",
                    "timestamp": "2026-03-01T00:00:00Z",
                    "event_time": "2013-07-02T00:00:00Z",
                    "features": {"x": 2.0},
                    "probability": 0.6,
                    "predicted_class": 1,
                }
            ]
        )
        frame = store.records_frame("m", "v1").set_index("prediction_id")
    assert frame.loc["old-1", "event_time"] == pd.Timestamp("2013-07-01T00:00:00Z")
    old = frame.loc["old-1"]
    assert old["event_time"] == old["timestamp"]
    assert frame.loc["old-1", "label"] == 1 and frame.loc["old-1", "x"] == 1.0
    assert frame.loc["new-1", "event_time"] == pd.Timestamp("2013-07-02T00:00:00Z")
    assert frame.loc["new-1", "timestamp"] == pd.Timestamp("2026-03-01T00:00:00Z")
    with SqliteStore(db) as store:  # reopening applies nothing twice
        assert len(store.records_frame("m", "v1", event_from_us=1372723200000000)) == 1


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


def test_postgres_reopen_keeps_data_and_refuses_a_newer_schema(
    request: pytest.FixtureRequest,
) -> None:
    import psycopg

    from monitor.store.postgres_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION

    url = request.getfixturevalue("pg_database_url")
    where = Where(Path("unused.db"), url)
    with open_store(where) as st:
        st.append_records([record(i) for i in range(3)])
        st.append_labels([{"prediction_id": "p000001", "label": 1}])
    with open_store(where) as st:  # migrations are not applied twice; the rows are there
        assert st.count_records("m", "v1") == 3
        assert st.label_coverage("m", "v1") == (3, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT max(version), count(*) FROM schema_version").fetchone()
        assert row == (PG_SCHEMA_VERSION, PG_SCHEMA_VERSION)
        conn.execute("INSERT INTO schema_version VALUES (%s)", (PG_SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNewError):
        open_store(where)


def test_a_failing_ingest_request_stores_none_of_its_rows(store: Store) -> None:
    bad = [record(1), record(2), {**record(3), "features": {"x": float("nan")}}]
    with pytest.raises(ValueError, match="finite"):
        store.append_records(bad)
    assert store.count_records("m", "v1") == 0
    assert store.append_records([record(1), record(2)]) == (2, 0)


def test_the_label_clock_marks_changed_labels_only(store: Store) -> None:
    store.append_records([record(i) for i in range(4)])
    store.save_chunks([evidence(0, 0.8)])
    assert store.label_clock() == 0
    store.append_labels([{"prediction_id": "p000000", "label": 1}])
    first = store.label_clock()
    assert first > 0
    store.append_labels([{"prediction_id": "p000000", "label": 1}])  # same value: no change
    assert store.label_clock() == first
    store.append_labels([{"prediction_id": "p000001", "label": 0}])
    store.append_labels([{"prediction_id": "p000000", "label": 0}])  # a corrected label
    changed = store.label_changes("m", "v1", first)
    assert sorted(seq for seq, _ in changed) == [1, 2]
    assert all(stamp > first for _, stamp in changed)
    assert store.chunk_labels_seen("m", "v1") == {0: 0}
    mark = store.analysis_mark("m")
    store.mark_labels_seen("m", "v1", store.label_clock())
    assert store.chunk_labels_seen("m", "v1") == {0: store.label_clock()}
    store.save_chunks([evidence(1, 0.7)])
    assert store.analysis_mark("m") != mark


def test_retention_deletes_old_records_with_their_labels_and_old_orphans(store: Store) -> None:
    day = 86_400 * 1_000_000
    t0 = 1_000 * day
    store.append_records([record(i) for i in range(7)])
    store.append_labels([{"prediction_id": f"p{i:06d}", "label": 1} for i in range(3)])
    store.append_labels([{"prediction_id": "never-served", "label": 1}])
    store.append_audit({"kind": "note", "model": "m"})
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


def test_a_store_says_where_its_data_is_without_credentials(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from monitor.store.postgres import PostgresStore

    url = str(request.getfixturevalue("pg_database_url"))

    with SqliteStore(tmp_path / "m.db") as lite:
        assert lite.location == str(tmp_path / "m.db")
    with_password = url.replace("user=postgres", "user=postgres&password=s3cret")
    with PostgresStore(with_password) as pg:
        assert pg.location.startswith("postgresql://postgres@")
        assert "s3cret" not in pg.location
