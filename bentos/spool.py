"""The bounded on-disk spool behind `bentos.shipping`: batches the monitor has not accepted yet.

Why a module of its own: the spool is the part of record delivery that deals with files,
`flock` ownership, orphan adoption and the byte bound, and none of that depends on the
buffer or the sending thread in `bentos.shipping`, which only calls `put`, `oldest`,
`remove_oldest`, `len`, `adopt_orphans` and `close`.

Each process keeps its own spool directory under an exclusive `flock`, so a directory whose
lock can be taken is an orphan of a dead process (or of a closed spool that still held
batches) and is adopted; adopted batches are merged in by name, which starts with the time
they were written. Past `max_bytes` the oldest batches are dropped, counted (`spool_full`)
and logged once per incident; a batch that cannot be written or read back is counted the
same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections import deque
from pathlib import Path
from typing import NamedTuple, Protocol

logger = logging.getLogger("modelguard.shipping")

LOCK_NAME = "lock"


class SpoolCounters(Protocol):
    """The counts the spool reports (`bentos.shipping.ShippingStats` implements them)."""

    def on_dropped(self, reason: str, n: int) -> None: ...

    def on_spool_bytes(self, size: int) -> None: ...


class SpoolFile(NamedTuple):
    path: Path
    size: int
    records: int


class Spool:
    """This process's batches on disk, oldest first, bounded in bytes (drop-oldest)."""

    def __init__(self, root: Path, max_bytes: int, stats: SpoolCounters) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.stats = stats
        self._seq = 0
        self._files: deque[SpoolFile] = deque()
        self._bytes = 0
        self._dropping = False
        root.mkdir(parents=True, exist_ok=True)
        # Created under a hidden name and locked before it becomes visible to adopters.
        hidden = root / f".new-{os.getpid()}-{secrets.token_hex(4)}"
        hidden.mkdir()
        self._lock_fd = os.open(hidden / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.dir = root / f"w-{os.getpid()}-{secrets.token_hex(4)}"
        hidden.rename(self.dir)
        self.adopt_orphans()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._files)

    def put(self, body: bytes, records: int) -> None:
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:08d}-{records}.json"
        tmp = self.dir / f".{name}.tmp"
        try:
            tmp.write_bytes(body)
            tmp.rename(self.dir / name)
        except OSError as exc:
            logger.error("spool write failed (%s); %d records dropped", exc, records)
            self.stats.on_dropped("spool_full", records)
            return
        self._files.append(SpoolFile(self.dir / name, len(body), records))
        self._bytes += len(body)
        self._enforce_bound()

    def oldest(self) -> tuple[SpoolFile, bytes] | None:
        while self._files:
            head = self._files[0]
            try:
                return head, head.path.read_bytes()
            except OSError as exc:
                logger.error("unreadable spool file %s (%s); dropped", head.path.name, exc)
                self.stats.on_dropped("spool_full", head.records)
                self._forget_head()
        return None

    def remove_oldest(self) -> None:
        if self._files:
            self._files[0].path.unlink(missing_ok=True)
            self._forget_head()
        if not self._files:
            self._dropping = False

    def adopt_orphans(self) -> int:
        """Move batches of dead processes' spools into ours; returns the records adopted."""
        adopted = 0
        for other in self.root.iterdir():
            if other == self.dir or other.name.startswith(".") or not other.is_dir():
                continue
            adopted += self._adopt(other)
        if adopted:
            logger.info("adopted %d spooled records left by an earlier process", adopted)
        return adopted

    def close(self) -> None:
        """Release the lock; an empty directory is removed, a non-empty one is an orphan."""
        if not self._files:
            for leftover in self.dir.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
            (self.dir / LOCK_NAME).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.dir.rmdir()
        os.close(self._lock_fd)

    def _adopt(self, other: Path) -> int:
        try:
            fd = os.open(other / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its owner is alive
            adopted = 0
            for path in sorted(other.glob("*.json")):
                target = self.dir / path.name
                try:
                    path.rename(target)
                except OSError:
                    continue
                size, records = target.stat().st_size, _records_in_name(target.name)
                self._files.append(SpoolFile(target, size, records))
                self._bytes += size
                adopted += records
            for leftover in other.iterdir():
                leftover.unlink(missing_ok=True)
            other.rmdir()
        except OSError as exc:
            logger.warning("could not adopt spool %s: %s", other.name, exc)
            return 0
        finally:
            os.close(fd)
        self._files = deque(sorted(self._files, key=lambda f: f.path.name))
        self._enforce_bound()
        return adopted

    def _forget_head(self) -> None:
        head = self._files.popleft()
        self._bytes -= head.size
        self.stats.on_spool_bytes(self._bytes)

    def _enforce_bound(self) -> None:
        while self._bytes > self.max_bytes and self._files:
            head = self._files[0]
            if not self._dropping:
                logger.error(
                    "spool over %d bytes: dropping the oldest batches until the monitor "
                    "accepts records again (counted in records_dropped_total{reason=spool_full})",
                    self.max_bytes,
                )
                self._dropping = True
            head.path.unlink(missing_ok=True)
            self.stats.on_dropped("spool_full", head.records)
            self._forget_head()
        self.stats.on_spool_bytes(self._bytes)


def _records_in_name(name: str) -> int:
    try:
        return int(name.rsplit(".", 1)[0].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0
