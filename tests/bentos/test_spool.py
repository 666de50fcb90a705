"""The on-disk spool alone, on real files: order, acknowledgement, the byte bound and what it
counts, and batches that outlive their process (a crash, a close with batches left)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bentos.shipping import ShippingStats
from bentos.spool import LOCK_NAME, Spool


def batches(spool: Spool) -> list[tuple[bytes, int]]:
    """(body, records) of everything the spool still holds, oldest first, acknowledging each."""
    out = []
    while (head := spool.oldest()) is not None:
        out.append((head[1], head[0].records))
        spool.remove_oldest()
    return out


def drain(spool: Spool) -> list[bytes]:
    return [body for body, _ in batches(spool)]


def spooled_files(spool: Spool) -> list[Path]:
    return sorted(spool.dir.glob("*.json"))


def crash_with(root: Path, bodies: list[bytes], records: int) -> None:
    """A real process that spools `bodies` and dies without closing its spool."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from bentos.shipping import ShippingStats
        from bentos.spool import Spool
        spool = Spool(Path({str(root)!r}), 10**6, ShippingStats())
        for body in {bodies!r}:
            spool.put(body, {records})
        os._exit(0)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=60)


def test_batches_come_back_oldest_first_until_acknowledged(
    tmp_path: Path, stats: ShippingStats
) -> None:
    spool = Spool(tmp_path, 10**6, stats)
    for body in (b"first", b"second", b"third"):
        spool.put(body, 2)
    assert len(spool) == 3 and spool.size_bytes == len(b"firstsecondthird")
    assert stats.spool_bytes == spool.size_bytes
    head, body = spool.oldest() or pytest.fail("empty spool")
    assert body == b"first" and head.records == 2 and head.path.exists()
    assert spool.oldest() == (head, body)  # reading does not acknowledge
    spool.remove_oldest()
    assert not head.path.exists()
    assert drain(spool) == [b"second", b"third"]
    assert spool.oldest() is None and spool.size_bytes == 0 and stats.spool_bytes == 0
    assert stats.dropped == {}
    spool.remove_oldest()  # on an empty spool: nothing to do


def test_files_are_visible_only_once_written(tmp_path: Path, stats: ShippingStats) -> None:
    spool = Spool(tmp_path, 10**6, stats)
    spool.put(b"body", 7)
    (only,) = spooled_files(spool)
    assert only.read_bytes() == b"body"
    assert only.name.endswith("-7.json")  # the record count travels in the name
    assert not list(spool.dir.glob(".*.tmp"))


def test_past_the_bound_the_oldest_batches_are_dropped_and_counted(
    tmp_path: Path, stats: ShippingStats, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, 25, stats)
    with caplog.at_level(logging.ERROR, logger="modelguard.shipping"):
        for k in range(5):
            spool.put(bytes([48 + k]) * 10, records=3)  # 10 bytes each: two fit
    assert drain(spool) == [b"3" * 10, b"4" * 10]
    assert stats.dropped == {"spool_full": 9}  # three batches of three records
    overflow = [r.message for r in caplog.records if "spool over 25 bytes" in r.message]
    assert len(overflow) == 1  # one line for the incident, not one per dropped batch


def test_each_overflow_incident_is_logged_once(
    tmp_path: Path, stats: ShippingStats, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, 15, stats)
    with caplog.at_level(logging.ERROR, logger="modelguard.shipping"):
        for _ in range(3):
            spool.put(b"x" * 10, 1)
        drain(spool)  # the monitor took everything: the incident is over
        for _ in range(3):
            spool.put(b"y" * 10, 1)
    assert len([r for r in caplog.records if "spool over" in r.message]) == 2
    assert stats.dropped == {"spool_full": 4}


def test_a_batch_larger_than_the_bound_is_dropped_at_once(
    tmp_path: Path, stats: ShippingStats
) -> None:
    spool = Spool(tmp_path, 5, stats)
    spool.put(b"x" * 6, 4)
    assert len(spool) == 0 and spooled_files(spool) == []
    assert stats.dropped == {"spool_full": 4} and stats.spool_bytes == 0


def test_a_failed_write_is_counted_not_raised(tmp_path: Path, stats: ShippingStats) -> None:
    spool = Spool(tmp_path, 10**6, stats)
    for path in spool.dir.iterdir():
        path.unlink()
    spool.dir.rmdir()  # the disk went away under it
    spool.put(b"body", 5)
    assert len(spool) == 0 and stats.dropped == {"spool_full": 5}


def test_a_batch_gone_from_disk_is_skipped_and_counted(
    tmp_path: Path, stats: ShippingStats
) -> None:
    spool = Spool(tmp_path, 10**6, stats)
    spool.put(b"lost", 3)
    spool.put(b"kept", 2)
    spooled_files(spool)[0].unlink()
    assert drain(spool) == [b"kept"]
    assert stats.dropped == {"spool_full": 3} and spool.size_bytes == 0


def test_close_removes_an_empty_spool(tmp_path: Path, stats: ShippingStats) -> None:
    spool = Spool(tmp_path, 10**6, stats)
    spool.put(b"sent", 1)
    drain(spool)
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_a_live_spool_is_not_adopted(tmp_path: Path) -> None:
    owner = Spool(tmp_path, 10**6, ShippingStats())
    owner.put(b"mine", 4)
    other = Spool(tmp_path, 10**6, ShippingStats())
    assert len(other) == 0 and other.adopt_orphans() == 0
    assert drain(owner) == [b"mine"]


def test_batches_left_at_close_are_adopted_in_order_by_the_next_spool(
    tmp_path: Path, stats: ShippingStats
) -> None:
    first = Spool(tmp_path, 10**6, ShippingStats())
    first.put(b"a", 2)
    first.put(b"b", 3)
    first.close()  # the monitor never came back: the batches stay, the lock is released
    heir = Spool(tmp_path, 10**6, stats)
    assert len(heir) == 2 and heir.size_bytes == 2 and stats.spool_bytes == 2
    assert not (tmp_path / first.dir.name).exists()  # the orphan's directory is gone
    assert batches(heir) == [(b"a", 2), (b"b", 3)]


def test_a_crashed_process_leaves_batches_the_next_one_adopts(
    tmp_path: Path, stats: ShippingStats
) -> None:
    survivor = Spool(tmp_path, 10**6, stats)
    crash_with(tmp_path, [b"old-1", b"old-2"], records=5)
    survivor.put(b"new", 1)  # written after the crash: it sorts after the orphan's batches
    assert survivor.adopt_orphans() == 10
    assert drain(survivor) == [b"old-1", b"old-2", b"new"]
    assert [p.name for p in tmp_path.iterdir()] == [survivor.dir.name]


def test_adoption_keeps_the_bound(tmp_path: Path, stats: ShippingStats) -> None:
    crash_with(tmp_path, [b"1" * 10, b"2" * 10, b"3" * 10], records=2)
    heir = Spool(tmp_path, 25, stats)
    assert drain(heir) == [b"2" * 10, b"3" * 10]
    assert stats.dropped == {"spool_full": 2}


def test_a_half_written_batch_is_cleaned_up_not_adopted(
    tmp_path: Path, stats: ShippingStats
) -> None:
    orphan = tmp_path / "w-1-dead"
    orphan.mkdir()
    (orphan / LOCK_NAME).touch()
    (orphan / "00000000000000000001-1-00000001-4.json").write_bytes(b"whole")
    (orphan / ".00000000000000000002-1-00000002-4.json.tmp").write_bytes(b"ha")
    heir = Spool(tmp_path, 10**6, stats)
    assert not orphan.exists()
    assert drain(heir) == [b"whole"]


def test_directories_still_being_created_are_left_alone(
    tmp_path: Path, stats: ShippingStats
) -> None:
    hidden = tmp_path / ".new-1-abcd"  # a starting process has not locked and renamed it yet
    hidden.mkdir()
    (hidden / "00000000000000000001-1-00000001-4.json").write_bytes(b"not yours")
    heir = Spool(tmp_path, 10**6, stats)
    assert len(heir) == 0 and hidden.exists()


def test_a_file_name_without_a_record_count_counts_none(
    tmp_path: Path, stats: ShippingStats
) -> None:
    orphan = tmp_path / "w-1-dead"
    orphan.mkdir()
    (orphan / "garbled.json").write_bytes(b"{}")
    heir = Spool(tmp_path, 10**6, stats)
    assert batches(heir) == [(b"{}", 0)]
