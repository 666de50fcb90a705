"""Group commit: concurrent ingest requests share one transaction and one fsync.

With `synchronous=FULL` every commit waits for the disk. When several requests arrive at
once, the first to take the writer lock (the leader) runs every queued request, each inside
its own SAVEPOINT (a failing request is rolled back alone: all-or-nothing per request),
then commits once; the followers find their work done when they get the lock. Nobody is
told "stored" before the COMMIT that contains their rows has returned.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any


class _Ticket:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs write work on `conn` under `lock`, batching what queues up meanwhile."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self.commits = 0  # how many transactions carried the requests (for tests)

    def run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        ticket = _Ticket(work)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._lock:
            if not ticket.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _commit(self, batch: list[_Ticket]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for ticket in batch:
                conn.execute("SAVEPOINT request")
                try:
                    ticket.result = ticket.work(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO request")
                    ticket.error = exc
                conn.execute("RELEASE request")
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException as exc:  # nothing of this batch is stored: tell every request
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for ticket in batch:
                ticket.result, ticket.error = None, ticket.error or exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for ticket in batch:
                ticket.done = True
