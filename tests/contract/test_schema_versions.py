"""Schema version 2: expected ranges are served and counted, limits refused; version-1 files
keep loading with their `min`/`max` read as limits; every validator error is a ValueError
naming its field (a KeyError was a 500 on registration)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from contract.schema import SCHEMA_VERSION, ModelSchema, Range

V1_FEATURES: list[dict[str, Any]] = [
    {"name": "precip", "dtype": "float", "min": 0, "max": 10, "nullable": True},
    {"name": "hour", "dtype": "int", "min": 0, "max": 23},
    {"name": "season", "dtype": "category", "categories": ["spring", "summer"]},
]
V1: dict[str, Any] = {
    "schema_version": 1,
    "features": V1_FEATURES,
    "label": {"name": "rain"},
    "segment": "season",
}


def v2(**precip: Any) -> ModelSchema:
    return ModelSchema.model_validate(
        {
            "schema_version": 2,
            "features": [
                {"name": "precip", **precip},
                {"name": "season", "dtype": "category", "categories": ["spring", "summer"]},
            ],
            "label": {"name": "rain"},
        }
    )


def test_a_version_1_schema_loads_with_its_min_max_as_limits() -> None:
    schema = ModelSchema.model_validate(V1)
    precip, hour, season = schema.features
    assert schema.schema_version == SCHEMA_VERSION == 2
    assert precip.limits == Range(min=0, max=10) and precip.expected is None
    assert hour.limits == Range(min=0, max=23) and season.unknown == "refuse"
    # What a version-1 predictor refused stays refused...
    rows = pd.DataFrame({"precip": [5.0, 11.0], "hour": [3, 3], "season": ["spring"] * 2})
    assert schema.valid_rows(rows).tolist() == [True, False]
    record = schema.record_model()
    with pytest.raises(ValidationError) as err:
        record.model_validate({"precip": 11.0, "hour": 3, "season": "spring"})
    assert err.value.errors()[0]["loc"] == ("precip",)
    # ...and a dump reads back as the same schema (it is version 2 now, no `min` left).
    dumped = schema.model_dump()
    assert "min" not in dumped["features"][0] and ModelSchema.model_validate(dumped) == schema


def test_a_file_without_a_version_is_version_1_only_when_it_has_min_or_max() -> None:
    old = ModelSchema.model_validate({k: v for k, v in V1.items() if k != "schema_version"})
    assert old.features[0].limits == Range(min=0, max=10)
    new = v2(expected={"min": 0, "max": 5})
    assert new.features[0].expected == Range(min=0, max=5)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"min": 0}, "schema version 1 keys"),  # a version-2 feature with version-1 keys
        ({"expected": {"min": 3, "max": 1}}, "min 3.0 > max 1.0"),
        ({"limits": {"min": math.nan}}, "finite"),
        ({"unknown": "missing"}, "only categories take `unknown`"),
    ],
)
def test_bad_ranges_are_refused_naming_the_feature(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        v2(**body)
    assert needle in str(err.value) and err.value.errors()[0]["loc"][:2] == ("features", 0)


def test_version_1_refuses_version_2_keys_and_unknown_versions_are_refused() -> None:
    mixed = {**V1, "features": [{"name": "x", "expected": {"max": 1}}, *V1_FEATURES[1:]]}
    with pytest.raises(ValidationError, match="set schema_version: 2"):
        ModelSchema.model_validate(mixed)
    for version in (3, True, "1"):
        with pytest.raises(ValidationError) as err:
            ModelSchema.model_validate({**V1, "schema_version": version})
        assert ("schema_version",) in [e["loc"] for e in err.value.errors()]


def test_expected_range_is_served_and_counted_limits_are_refused() -> None:
    schema = v2(expected={"min": 0, "max": 5}, limits={"min": 0})
    record = schema.record_model()
    record.model_validate({"precip": 7.5, "season": "summer"})  # beyond expected: served
    with pytest.raises(ValidationError) as err:
        record.model_validate({"precip": -1.0, "season": "summer"})
    assert err.value.errors()[0]["loc"] == ("precip",)
    frame = pd.DataFrame({"precip": [1.0, 7.5, 2.0, None], "season": ["spring"] * 4})
    assert schema.valid_rows(frame).tolist() == [True, True, True, False]  # not nullable
    assert schema.out_of_range(frame) == {"precip": pytest.approx(1 / 3), "season": 0.0}


def test_unknown_category_is_refused_or_served_as_missing_and_counted_either_way() -> None:
    def schema(unknown: str) -> ModelSchema:
        return ModelSchema.model_validate(
            {
                "features": [
                    {"name": "x", "expected": {"min": 0, "max": 1}},
                    {"name": "c", "dtype": "category", "categories": ["a", "b"]}
                    | {"unknown": unknown},
                ],
                "label": {"name": "y"},
            }
        )

    refuse, missing = schema("refuse"), schema("missing")
    rows = pd.DataFrame({"x": [0.5, 0.5], "c": ["a", "new"]})
    with pytest.raises(ValidationError):
        refuse.record_model().model_validate({"x": 0.5, "c": "new"})
    missing.record_model().model_validate({"x": 0.5, "c": "new"})
    assert refuse.valid_rows(rows).tolist() == [True, False]
    assert missing.valid_rows(rows).tolist() == [True, True]
    assert np.isnan(missing.to_matrix(rows)[1, 1]) and missing.to_matrix(rows)[0, 1] == 0.0
    assert missing.encode(rows)["c"].isna().tolist() == [False, True]
    with pytest.raises(ValueError, match="outside the schema's categories"):
        refuse.encode(rows)
    assert refuse.out_of_range(rows)["c"] == missing.out_of_range(rows)["c"] == 0.5


@pytest.mark.parametrize("segment", ["", "nope", "precip"])
def test_a_bad_segment_is_a_value_error_on_the_segment_field(segment: str) -> None:
    body = {**V1, "segment": segment}
    with pytest.raises(ValidationError) as err:
        ModelSchema.model_validate(body)
    (only,) = err.value.errors()
    assert only["loc"] == ("segment",) and only["type"] == "value_error"
    assert ("must be a category" if segment == "precip" else "is not one of the features") in (
        only["msg"]
    )


def test_duplicate_names_name_the_features_field() -> None:
    body = {**V1, "features": [V1_FEATURES[0], V1_FEATURES[0]], "segment": None}
    with pytest.raises(ValidationError) as err:
        ModelSchema.model_validate(body)
    assert err.value.errors()[0]["loc"] == ("features",)
