"""contract.errors: pydantic's errors as the shared error body, without a server."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contract.errors import ErrorBody, FieldError, field_errors, location, summarize
from contract.records import RecordsBatch


def refused(raw: str | bytes) -> list[FieldError]:
    with pytest.raises(ValidationError) as info:
        RecordsBatch.model_validate_json(raw)
    return field_errors(info.value.errors(include_url=False))


def record(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "prediction_id": "p1",
        "model": "m",
        "version": "v",
        "timestamp": "2013-07-01T00:00:00Z",
        "features": {"temp": 1.5},
        "probability": 0.5,
        "predicted_class": 0,
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("body", "records", 3, "probability"), "records[3].probability"),
        (("records", 0, "features", "temp"), "records[0].features.temp"),
        (("query", "limit"), "query.limit"),
        (("body",), "body"),
        ((), "body"),
    ],
)
def test_locations_are_dotted_and_indexed(parts: tuple[object, ...], expected: str) -> None:
    assert location(parts) == expected


def test_each_location_once_and_union_branches_folded_per_feature() -> None:
    bad = record(features={"temp": True, "dewp": "ok", "wind": [1]}, predicted_class=True)
    assert refused(json.dumps({"records": [record(), bad]})) == [
        FieldError(loc="records[1].features.temp", msg="must be a finite number, a string or null"),
        FieldError(loc="records[1].features.wind", msg="must be a finite number, a string or null"),
        FieldError(
            loc="records[1].predicted_class", msg="must be the integer 0 or 1, not a boolean"
        ),
    ]


def test_nan_is_named_as_such() -> None:
    raw = json.dumps({"records": [record(features={"temp": 0.25})]}).replace("0.25", "NaN")
    assert refused(raw) == [
        FieldError(
            loc="records[0].features.temp",
            msg="must be finite (NaN and infinity are not allowed; send null)",
        )
    ]


def test_malformed_json_is_reported_at_the_body() -> None:
    (only,) = refused(b'{"records": [')
    assert only.loc == "body" and only.msg.startswith("Invalid JSON: EOF while parsing")
    # FastAPI's own JSON decoding names a position.
    fastapi = {"type": "json_invalid", "loc": ("body", 12), "msg": "JSON decode error"}
    (decoded,) = field_errors([{**fastapi, "ctx": {"error": "Expecting value"}}])
    assert decoded == FieldError(loc="body", msg="Invalid JSON at position 12: Expecting value")


def test_explain_replaces_a_message_and_the_list_is_bounded() -> None:
    errors = [
        {"type": "literal_error", "loc": ("records", i, "origin"), "msg": "Input should be 'A'"}
        for i in range(60)
    ]
    out = field_errors(errors, explain=lambda err, loc: f"{loc} is not a known origin")
    assert len(out) == 50
    assert out[3] == FieldError(
        loc="records[3].origin", msg="records[3].origin is not a known origin"
    )


def test_bodies_summarize_their_errors() -> None:
    many = [FieldError(loc=f"records[{i}].temp", msg="bad") for i in range(7)]
    body = ErrorBody.listing(many)
    assert body.error == "; ".join(f"records[{i}].temp: bad" for i in range(5)) + "; and 2 more"
    assert ErrorBody.about("no such model") == ErrorBody(error="no such model", errors=[])
    assert ErrorBody.about("too big", loc="body").model_dump() == {
        "error": "body: too big",
        "errors": [{"loc": "body", "msg": "too big"}],
    }
    assert summarize([]) == "invalid request"
