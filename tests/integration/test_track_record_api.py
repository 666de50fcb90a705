"""The monitor's own track record over HTTP: how wrong a version's label-free estimates have
been, read back from the stored chunks by the real server (so it survives a restart)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from monitor.core.evidence import Estimate
from monitor.store.sqlite import SqliteStore
from tests.support.kube import MODEL, chunk
from tests.support.monitor import running_monitor

VERSION = "good-aaaa"
# (estimate, its 90% interval, realized): 3 of 4 realized values fall inside their interval.
CHUNKS = [
    (0.80, (0.70, 0.90), 0.85),
    (0.80, (0.70, 0.90), 0.72),
    (0.75, (0.70, 0.80), 0.60),
    (0.90, (0.85, 0.95), 0.86),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.db"
    with SqliteStore(path) as store:
        for i, (value, (low, high), realized) in enumerate(CHUNKS):
            est = Estimate(
                value, value - 0.03, value + 0.03, sampling_error=0.01,
                interval_lower=low, interval_upper=high, interval_level=0.9,
            )  # fmt: skip
            base = chunk(VERSION, i, realized=realized, labelled_rows=500)
            store.save_chunk(replace(base, estimated={"roc_auc": est}))
        # Half-labelled: not yet part of the track record.
        store.save_chunk(replace(chunk(VERSION, 4, realized=0.1, labelled_rows=250)))
    return path


def test_track_record_reports_error_bias_and_coverage(tmp_path: Path, db: Path) -> None:
    with running_monitor(tmp_path, db_path=db) as monitor:
        url = f"{monitor.url}/v1/models/{MODEL}/versions/{VERSION}/track-record"
        body = httpx.get(url, timeout=30).json()
    record = body["roc_auc"]
    errors = [realized - value for value, _, realized in CHUNKS]
    assert record["chunks"] == 4
    assert record["mae"] == pytest.approx(sum(abs(e) for e in errors) / 4)
    assert record["bias"] == pytest.approx(sum(errors) / 4)
    assert record["interval_coverage"] == pytest.approx(0.75)
    assert record["level"] == pytest.approx(0.9)


def test_reads_need_the_reader_token_when_one_is_set(tmp_path: Path, db: Path) -> None:
    with running_monitor(tmp_path, db_path=db, reader_token=True) as monitor:
        url = f"{monitor.url}/v1/models/{MODEL}/versions/{VERSION}/track-record"
        assert httpx.get(url, timeout=30).status_code == 401
        ok = httpx.get(url, headers=monitor.headers("reader"), timeout=30)
        assert ok.status_code == 200 and ok.json()["roc_auc"]["chunks"] == 4
