"""The label, the split and the schema contract on the real dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, Split, load_weather, records
from contract.schema import ModelSchema


def test_label_is_rain_in_next_four_hours_at_same_station() -> None:
    data = load_weather()
    ewr = data[data.origin == "EWR"].set_index(TIME_COLUMN)
    precip = ewr["precip"]
    checked = 0
    for t, row in ewr.iloc[100:400].iterrows():
        assert isinstance(t, pd.Timestamp)
        nxt = precip.loc[t + pd.Timedelta(hours=1) : t + pd.Timedelta(hours=4)]
        if len(nxt) == 4:
            assert row[LABEL_COLUMN] == int((nxt > 0).any()), t
            checked += 1
    assert checked > 250


def test_split_windows_do_not_overlap_and_reference_is_never_trained_on(split: Split) -> None:
    assert split.train[TIME_COLUMN].max() < split.reference[TIME_COLUMN].min()
    assert split.reference[TIME_COLUMN].max() < split.replay[TIME_COLUMN].min()
    assert split.train[TIME_COLUMN].dt.month.max() == 4
    assert set(split.reference[TIME_COLUMN].dt.month) == {5, 6}
    assert set(split.replay[TIME_COLUMN].dt.month) == set(range(7, 13))
    # enough positives per 500-row chunk for a meaningful ROC AUC
    assert split.reference[LABEL_COLUMN].mean() > 0.08


def test_training_rows_satisfy_the_schema(split: Split, schema: ModelSchema) -> None:
    assert schema.valid_rows(split.train).all()
    assert schema.valid_rows(split.reference).all()


def test_missing_values_are_kept_as_null_for_nullable_features(
    split: Split, schema: ModelSchema
) -> None:
    recs = records(split.replay.head(2000), schema)
    assert any(r["wind_gust"] is None for r in recs)
    assert all(r["temp"] is not None for r in recs)
    x = schema.to_matrix(split.replay.head(2000))
    assert x.dtype == np.float32
    assert np.isnan(x[:, schema.feature_names.index("wind_gust")]).any()


def test_record_model_refuses_each_bad_input_class(schema: ModelSchema) -> None:
    from pydantic import ValidationError

    Record = schema.record_model()
    good = {
        "origin": "EWR",
        "hour": 5,
        "temp": 50.0,
        "dewp": 40.0,
        "humid": 60.0,
        "wind_dir": None,
        "wind_speed": 5.0,
        "wind_gust": None,
        "precip": 0.0,
        "pressure": 1012.0,
        "visib": 10.0,
    }
    assert Record(**good).model_dump() == good
    # case -> the one error it must raise: (field, pydantic error type)
    bad_cases = {
        "missing": ({k: v for k, v in good.items() if k != "temp"}, ("temp", "missing")),
        "extra": ({**good, "colour": 1}, ("colour", "extra_forbidden")),
        "non-numeric": ({**good, "temp": "warm"}, ("temp", "float_type")),
        "nan": ({**good, "temp": float("nan")}, ("temp", "finite_number")),
        "inf": ({**good, "humid": float("inf")}, ("humid", "finite_number")),
        "out-of-range": ({**good, "humid": 140.0}, ("humid", "less_than_equal")),
        "unknown-category": ({**good, "origin": "XXX"}, ("origin", "literal_error")),
        "null-not-allowed": ({**good, "temp": None}, ("temp", "float_type")),
    }
    for case, (payload, (field, kind)) in bad_cases.items():
        with pytest.raises(ValidationError) as err:
            Record(**payload)
        assert [(e["loc"], e["type"]) for e in err.value.errors()] == [((field,), kind)], case
