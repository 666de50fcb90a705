"""Record shipping against a real loopback receiver: batching, spool bound, order, adoption.

Also the predictor's fast path: its float32 matrix must equal `ModelSchema.to_matrix`,
which the monitor uses for shadow re-scoring.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import SecretStr

from bentos.scoring import COLUMNS_FROM, matrix_builder, new_prediction_ids
from bentos.shipping import Shipper, ShippingConfig
from contract.records import RecordsBatch
from contract.schema import ModelSchema
from tests.support.predictor import RecordReceiver, free_port


def config(url: str, spool: Path, **kw: Any) -> ShippingConfig:
    base: dict[str, Any] = {
        "records_url": f"{url}/v1/records",
        "model": "m",
        "version": "v1",
        "spool_dir": spool,
        "spool_max_bytes": 10**8,
        "batch_records": 10,
        "flush_seconds": 0.05,
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "timeout_seconds": 2.0,
    }
    return ShippingConfig(**{**base, **kw})


def submit(shipper: Shipper, prefix: str, n: int) -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    shipper.submit([{"x": float(i)} for i in range(n)], ids, [0.5] * n, [1] * n)
    return ids


def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused


def test_batches_are_bounded_and_close_flushes(tmp_path: Path) -> None:
    with RecordReceiver() as rx:
        shipper = Shipper(config(rx.url, tmp_path, flush_seconds=60))
        shipper.start()
        sent = [i for k in range(7) for i in submit(shipper, f"r{k}-", 5)]
        shipper.close(5.0)
        assert rx.got.ids == set(sent)
        assert max(rx.got.batch_sizes) <= 10
        assert shipper.stats.shipped == 35
        rec = rx.got.records[0]
        assert rec["features"] == {"x": 0.0} and rec["model"] == "m" and rec["version"] == "v1"
        assert rec["timestamp"].endswith("+00:00")
        # The predictor writes exactly what the monitor accepts: the shared contract's body.
        batch = RecordsBatch.model_validate_json(json.dumps({"records": rx.got.records}))
        assert {r.prediction_id for r in batch.records} == set(sent)


def test_too_early_is_retried_and_the_token_is_sent(tmp_path: Path) -> None:
    """The monitor answers 425 until the version's registration lands: kept, sent again."""
    with RecordReceiver(records_status=[425, 425, 425]) as rx:
        token = SecretStr("predictor-token")
        shipper = Shipper(config(rx.url, tmp_path / "s", token=token))
        shipper.start()
        sent = submit(shipper, "early-", 25)
        assert rx.wait_for(25, timeout=30) == 25
        shipper.close(5.0)
    assert rx.got.ids == set(sent) and rx.got.posts >= 3 + 3
    assert shipper.stats.dropped == {}
    assert rx.got.records_auth == {"Bearer predictor-token"}
    assert "predictor-token" not in repr(shipper.config)


def test_spool_is_bounded_drops_oldest_and_counts(tmp_path: Path) -> None:
    url = nowhere()
    batch_bytes = len(b'{"records":[]}') + 10 * 140
    shipper = Shipper(config(url, tmp_path, spool_max_bytes=3 * batch_bytes))
    for k in range(6):
        submit(shipper, f"b{k}-", 10)
        shipper._pump()  # one batch per call; the thread is not started in this test
    assert shipper.spool.size_bytes <= 3 * batch_bytes
    dropped = shipper.stats.dropped["spool_full"]
    assert dropped > 0 and dropped % 10 == 0
    kept = len(shipper.spool) * 10
    assert kept + dropped == 60
    with RecordReceiver() as rx:
        shipper.config = config(rx.url, tmp_path)  # the monitor is back (same spool)
        shipper._retry_at = 0.0
        shipper._pump()
        # Only the newest batches survive: drop-oldest.
        assert rx.got.ids == {f"b{k}-{i:05d}" for k in range(6 - kept // 10, 6) for i in range(10)}
    assert shipper.stats.spool_bytes == 0
    shipper.close(0)


def test_spool_is_resent_oldest_first(tmp_path: Path) -> None:
    shipper = Shipper(config(nowhere(), tmp_path))
    for k in range(4):
        submit(shipper, f"{k}-", 10)
        shipper._pump()
    assert len(shipper.spool) == 4
    with RecordReceiver() as rx:
        shipper.config = config(rx.url, tmp_path)
        shipper._retry_at = 0.0
        submit(shipper, "4-", 10)  # new records queue behind the spool
        shipper._pump()
        order = [r["prediction_id"].split("-")[0] for r in rx.got.records]
        assert order == sorted(order) and len(order) == 50
    shipper.close(0)


def test_orphaned_spool_is_adopted_but_a_live_one_is_not(tmp_path: Path) -> None:
    alive = Shipper(config(nowhere(), tmp_path))
    dead = Shipper(config(nowhere(), tmp_path))
    dead.start()
    lost = submit(dead, "dead-", 25)
    dead.close(0.2)  # monitor unreachable: everything lands in the spool, lock released
    submit(alive, "alive-", 5)
    alive._pump()
    assert len(alive.spool) >= 1
    with RecordReceiver() as rx:
        heir = Shipper(config(rx.url, tmp_path))  # adopts `dead`, not the locked `alive`
        heir.start()
        assert rx.wait_for(25, timeout=10) == 25
        assert rx.got.ids == set(lost)
        heir.close(2)
    alive.close(0)


def test_buffer_bound_and_sampling_are_counted(tmp_path: Path) -> None:
    shipper = Shipper(config(nowhere(), tmp_path, queue_max_records=10))
    submit(shipper, "a", 8)
    submit(shipper, "b", 8)  # does not fit: dropped, counted, never raised
    assert shipper.stats.dropped == {"queue_full": 8}
    assert shipper.queued == 8
    shipper.close(0)
    sampled = Shipper(config(nowhere(), tmp_path / "s", sample_rate=0.25, queue_max_records=10**6))
    random.seed(1)
    submit(sampled, "s", 4000)
    out = sampled.stats.dropped["sampled_out"]
    assert 2700 < out < 3300 and out + sampled.queued == 4000
    sampled.close(0)


def test_hot_path_never_raises(tmp_path: Path) -> None:
    shipper = Shipper(config(nowhere(), tmp_path))
    shipper.submit(None, None, None, None)  # type: ignore[arg-type]
    assert shipper.queued == 0
    shipper.close(0)


# ------------------------------------------------------------- the predictor's fast matrix
def _random_records(schema: ModelSchema, n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        rec: dict[str, Any] = {}
        for f in schema.features:
            if f.nullable and rng.random() < 0.3:
                rec[f.name] = None
            elif f.dtype == "category":
                rec[f.name] = rng.choice(f.categories or [])
            elif f.dtype == "int":
                low, high = f.limit_range()
                rec[f.name] = rng.randint(int(low or 0), int(100 if high is None else high))
            else:
                low, high = f.limit_range()
                lo = -1e3 if low is None else low
                hi = 1e3 if high is None else high
                rec[f.name] = rng.choice([lo, hi, rng.uniform(lo, hi), int(lo), lo + 1 / 3])
        out.append(rec)
    return out


def test_fast_matrix_equals_schema_to_matrix(schema: ModelSchema) -> None:
    build = matrix_builder(schema)
    Record = schema.record_model()
    raw = _random_records(schema, 500, random.Random(7))
    validated = [Record.model_validate(r) for r in raw]
    fast = build(validated)
    slow = schema.to_matrix(pd.DataFrame(raw))
    assert fast.dtype == slow.dtype == np.float32
    assert np.array_equal(fast, slow, equal_nan=True)
    assert np.array_equal(build(raw), slow, equal_nan=True)  # plain dicts too
    for n in (1, 3, COLUMNS_FROM - 1, COLUMNS_FROM):  # both conversions, either side of it
        assert np.array_equal(build(validated[:n]), slow[:n], equal_nan=True)
        assert np.array_equal(build(raw[:n]), slow[:n], equal_nan=True)
    assert any(math.isnan(v) for v in fast[:, schema.feature_names.index("wind_gust")])
    ids = new_prediction_ids(1000)
    assert len(set(ids)) == 1000 and all(
        len(i) == 32 and i[12] == "4" and i[16] in "89ab" for i in ids
    )
