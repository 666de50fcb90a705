"""The monitor's durable state on PostgreSQL (psycopg 3 with its connection pool).

For teams that already run PostgreSQL and outgrow one pod's disk: selected by
`MONITOR_DATABASE_URL=postgresql://...` (`monitor.store.open_store`). `PostgresStore`
implements the `Store` protocol (protocol.py), a sibling of `SqliteStore`: it shares the
parts whose SQL both engines accept (records.py, versions.py, memory.py, evidence.py,
retention.py), run through `dialect.POSTGRES` (`?` placeholders become `%s`, row locks), and
keeps its own connections, record ingest (binary arrays) and batched reads here.

Same semantics as SQLite:
- an acknowledged write survives a crash: a method returns after COMMIT, and PostgreSQL's
  default `synchronous_commit=on` flushes the WAL before COMMIT returns;
- each write method is one transaction (all-or-nothing per ingest request);
- writes are serialized, like SQLite's one writer, by a transaction-scoped advisory lock
  taken first in every write transaction. That keeps the arrival order `seq` and the label
  clock monotonic in commit order (analysis reads "everything after seq N"; two writers
  committing out of order would hide a record from it), also across monitor processes;
- `update_state` locks its row (`SELECT ... FOR UPDATE`) inside that transaction.
Reads borrow a pooled connection in autocommit mode: each statement sees committed data;
`records_frame` reads through a server-side cursor, a batch at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from monitor.store import frames
from monitor.store.dialect import PG_WRITE_LOCK, POSTGRES
from monitor.store.evidence import ChunkStore
from monitor.store.fits import FittedStates
from monitor.store.memory import StateAndAudit
from monitor.store.postgres_schema import migrate
from monitor.store.records import RecordsAndLabels
from monitor.store.retention import Retention
from monitor.store.sharing import WorkSharing
from monitor.store.types import (
    IngestResult,
    StoreUnavailableError,
    features_json,
    to_epoch_us,
)
from monitor.store.versions import ModelVersions

T = TypeVar("T")

# A server that is down must not hold a request: new connections give up after this, and a
# request waits at most `ACQUIRE_SECONDS` for a pooled one (the answer is then a 503).
CONNECT_TIMEOUT_SECONDS = 2
ACQUIRE_SECONDS = 1.0
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


@contextmanager
def _unavailable_as_typed() -> Iterator[None]:
    """A lost server (refused, dropped, pool exhausted) as the store's one typed error."""
    try:
        yield
    except UNREACHABLE as exc:
        raise StoreUnavailableError(f"PostgreSQL unreachable: {exc}") from exc


class _Rows:
    """A read's rows, fetched whole, with the cursor methods the shared code calls."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = len(rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        part = self._rows[self._at : self._at + size]
        self._at += len(part)
        return part

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.fetchmany(len(self._rows))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class _Reader:
    """What `_reader()` returns: each `execute` borrows a pooled connection for one query."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def execute(self, statement: str, params: Sequence[Any] = ()) -> _Rows:
        with _unavailable_as_typed(), self._pool.connection(timeout=ACQUIRE_SECONDS) as conn:
            cur = conn.execute(POSTGRES.sql(statement), tuple(params))
            return _Rows(cur.fetchall() if cur.description is not None else [])


class _Writer:
    """The connection a write transaction's work runs on (the shared code's `conn`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, statement: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(POSTGRES.sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        cur.executemany(POSTGRES.sql(statement), [tuple(r) for r in rows])
        return cur


class PostgresStore(
    RecordsAndLabels, StateAndAudit, ModelVersions, ChunkStore, Retention, FittedStates, WorkSharing
):
    """Thread-safe access to one monitor database on a PostgreSQL server."""

    dialect = POSTGRES

    def __init__(self, url: str, *, pool_size: int = 8, timeout_seconds: float = 30.0) -> None:
        self.url = url
        info = conninfo_to_dict(url)
        where = info.get("host") or "localhost"
        self._location = f"postgresql://{info.get('user', '')}@{where}/{info.get('dbname', '')}"
        self._closed = False
        self._write_lock = threading.RLock()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_seconds,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            open=False,
        )
        self._pool.open(wait=True, timeout=timeout_seconds)
        try:
            with self._pool.connection() as conn:
                migrate(conn)
        except BaseException:
            self._pool.close()
            raise
        self._reads = _Reader(self._pool)

    @property
    def location(self) -> str:
        """The server and database, without the password (settings mask the URL too)."""
        return self._location

    # -- connections -------------------------------------------------------------------

    def _reader(self) -> _Reader:
        if self._closed:
            raise RuntimeError("store is closed")
        return self._reads

    def _write(self, work: Callable[[_Writer], T]) -> T:
        """Run `work` in one transaction, after every other writer's: all of it or nothing.

        One write at a time per process (the lock: writers never take the pool's connections
        from the readers while they queue), and across processes (the advisory lock)."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            with (
                _unavailable_as_typed(),
                self._pool.connection(timeout=ACQUIRE_SECONDS) as conn,
                conn.transaction(),
            ):
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_WRITE_LOCK,))
                return work(_Writer(conn))

    def reachable(self) -> bool:
        try:
            self._reads.execute("SELECT 1")
        except StoreUnavailableError:
            return False
        return True

    def _write_grouped(self, work: Callable[[_Writer], T]) -> T:
        # No group commit here: measured in-process with 4 writer threads, sharing commits
        # did not raise ingest (the statements, not the WAL flush, bound it). That was before
        # ingest sent its arrays as binary parameters, which made the statements ~3x cheaper:
        # worth measuring again.
        return self._write(work)

    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what PostgreSQL does its own way ---------------------------------------------------

    def _row_batches(self, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of one read in batches from a server-side cursor (one snapshot): a long
        window is never all in memory at once."""
        with (
            _unavailable_as_typed(),
            self._pool.connection(timeout=ACQUIRE_SECONDS) as conn,
            conn.transaction(),
            conn.cursor(name="records_frame") as cur,
        ):
            cur.execute(POSTGRES.sql(sql), tuple(params))
            while rows := cur.fetchmany(frames.FRAME_BATCH_ROWS):
                yield rows

    def append_records_detailed(self, records: Sequence[Mapping[str, Any]]) -> IngestResult:
        groups: dict[tuple[str, str], list[list[Any]]] = {}
        for rec in records:
            model, version = str(rec["model"]), str(rec["version"])
            cols = groups.setdefault((model, version), [[] for _ in range(6)])
            cols[0].append(str(rec["prediction_id"]))
            cols[1].append(to_epoch_us(rec["timestamp"]))
            cols[2].append(features_json(rec["features"]))
            cols[3].append(float(rec["probability"]))
            cols[4].append(int(rec["predicted_class"]))
            event = rec.get("event_time")
            cols[5].append(to_epoch_us(event) if event is not None else None)

        def work(conn: _Writer) -> IngestResult:
            result = IngestResult()
            for (model, version), cols in groups.items():
                # One statement per version; a repeated prediction id (stored before, or twice
                # in this request) is skipped; RETURNING says which rows are new. The arrays
                # go in binary (%b): psycopg's text format escapes every element with a regex
                # substitution per quote of the features' JSON, which cost 4x SQLite's whole
                # ingest CPU (bench/store_backends.py); binary arrays need no escaping.
                added = [
                    row[0]
                    for row in conn.raw.execute(
                        "INSERT INTO records (prediction_id, model, version, ts_us, features,"
                        " probability, predicted_class, event_ts_us)"
                        " SELECT u.pid, %s, %s, u.ts, u.f, u.p, u.c, u.ev FROM unnest("
                        "%b::text[], %b::bigint[], %b::text[], %b::float8[], %b::int[],"
                        " %b::bigint[]) WITH ORDINALITY AS u(pid, ts, f, p, c, ev, n)"
                        " ORDER BY u.n ON CONFLICT (prediction_id) DO NOTHING"
                        " RETURNING prediction_id",
                        (model, version, *cols),
                    ).fetchall()
                ]
                result.accepted += len(added)
                result.duplicates += len(cols[0]) - len(added)
                if not added:
                    continue
                result.accepted_by_version[(model, version)] = len(added)
                # Labels that were waiting for these new records (they arrived first).
                (joined,) = conn.raw.execute(
                    "SELECT count(*) FROM labels WHERE prediction_id = ANY(%b)", (added,)
                ).fetchone() or (0,)
                if joined:
                    by_model = result.labels_joined_by_model
                    by_model[model] = by_model.get(model, 0) + int(joined)
            return result

        return self._write_grouped(work) if groups else IngestResult()
