"""What each backend keeps across a crash and a restart: acknowledged writes survive kill -9
(both); SQLite's WAL file, schema migrations and group commit; PostgreSQL's schema version;
where each says its data is."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from monitor.store import open_store
from monitor.store.migrations import MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError
from monitor.store.sqlite import SqliteStore
from tests.monitor.store.samples import record
from tests.support.paths import REPO
from tests.support.postgres import Where

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
