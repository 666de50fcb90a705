"""Records and labels on both backends: round trips into a typed frame, idempotent ingest,
label joins in any order, the label clock, whole transactions under a concurrent reader."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from monitor.store import Store
from tests.monitor.store.samples import evidence, record, registration


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
    monkeypatch.setattr("monitor.store.frames.FRAME_BATCH_ROWS", 5)  # both backends
    batched = store.records_frame("m", "v1")
    pd.testing.assert_frame_equal(
        batched[whole.columns], whole, check_dtype=False, check_index_type=False
    )
    assert batched["label"].dtype == "Int64" and batched["label"].notna().sum() == 1


def test_record_models_maps_stored_ids_to_their_model_across_in_chunks(store: Store) -> None:
    """What the per-model labels check reads (monitor/api/routes/ingest.py): more ids than
    one `IN (...)` query, repeats, and ids without a record left out."""
    store.append_records([record(i, model="a" if i % 2 else "b") for i in range(1200)])
    ids = [f"p{i:06d}" for i in range(1200)] + ["p000001", "never-stored"]
    found = store.record_models(ids)
    assert len(found) == 1200 and "never-stored" not in found
    assert (found["p000001"], found["p000002"], found["p001199"]) == ("a", "b", "a")
    assert store.record_models([]) == {}
