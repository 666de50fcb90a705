"""The predictor's request parsing, without a server: which request is refused, with which
status, naming which part of it; what the logging and event-time headers and `?explain` turn
into. Bodies go through a real starlette `Request` fed by an ASGI `receive`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.requests import Request

from bentos.requests import (
    BYTES_PER_RECORD,
    EVENT_TIME_HEADER,
    LOG_HEADER,
    Rejected,
    RequestRecords,
    explain_param,
    logging_headers,
    request_model,
)
from contract.errors import ErrorBody
from contract.schema import ModelSchema

GOOD = {"temp": 12.5, "hour": 7, "city": "oslo"}
NDJSON = "application/x-ndjson"


def parse(
    model: Any,
    body: bytes | Sequence[bytes],
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
    media: str | None = "application/json",
) -> RequestRecords | Rejected:
    """What the route's input spec hands the API method for this request."""
    parts = [body] if isinstance(body, bytes) else list(body)
    sent = {"content-type": media} if media else {}
    sent.update(headers or {})
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in sent.items()],
    }
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    parsed = asyncio.run(model.from_http_request(Request(scope, receive), None))
    records: RequestRecords | Rejected = parsed.records
    return records


def refused(outcome: object, status: int) -> ErrorBody:
    assert isinstance(outcome, Rejected), f"accepted: {outcome!r}"
    assert outcome.status == status, outcome.body
    return outcome.body


def locs(body: ErrorBody) -> list[str]:
    return [e.loc for e in body.errors]


def records_json(*records: dict[str, Any]) -> bytes:
    return json.dumps({"records": list(records)}).encode()


@pytest.fixture
def single(small_schema: ModelSchema) -> Any:
    return request_model("PredictRequest", small_schema, 3, "1 to 3 records")


@pytest.fixture
def batch(small_schema: ModelSchema) -> Any:
    return request_model("BatchPredictRequest", small_schema, 3, "records", ndjson=True)


# ------------------------------------------------------------------ headers and query


def test_records_are_logged_with_their_serving_time_by_default() -> None:
    assert logging_headers({}) == (True, None)
    assert logging_headers({LOG_HEADER: " OFF "}) == (False, None)
    assert logging_headers({LOG_HEADER: "on"}) == (True, None)


def test_a_log_flag_other_than_on_or_off_is_refused_naming_the_header() -> None:
    outcome = logging_headers({LOG_HEADER: "sometimes"})
    body = refused(outcome, 400)
    assert locs(body) == [LOG_HEADER] and "'sometimes'" in body.errors[0].msg


@pytest.mark.parametrize(
    ("sent", "stamped"),
    [
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T14:30:00+02:00", "2024-05-01T12:30:00+00:00"),  # converted to UTC
        ("2024-05-01T12:00:00", "2024-05-01T12:00:00+00:00"),  # no zone: taken as UTC
        (" 2024-05-01 ", "2024-05-01T00:00:00+00:00"),
    ],
)
def test_the_event_time_header_is_stamped_in_utc(sent: str, stamped: str) -> None:
    assert logging_headers({EVENT_TIME_HEADER: sent}) == (True, stamped)


def test_an_event_time_travels_with_logging_off() -> None:
    headers = {LOG_HEADER: "off", EVENT_TIME_HEADER: "2024-05-01T12:00:00Z"}
    assert logging_headers(headers) == (False, "2024-05-01T12:00:00+00:00")


@pytest.mark.parametrize("sent", ["yesterday", "2024-13-01", "", "1714564800"])
def test_an_unreadable_event_time_is_refused_naming_the_header(sent: str) -> None:
    body = refused(logging_headers({EVENT_TIME_HEADER: sent}), 400)
    assert locs(body) == [EVENT_TIME_HEADER] and "ISO-8601" in body.error


@pytest.mark.parametrize(
    ("query", "k"),
    [({}, 0), ({"explain": "false"}, 0), ({"explain": "2"}, 2), ({"explain": "3"}, 3)],
)
def test_explain_asks_for_k_contributions(query: dict[str, str], k: int) -> None:
    assert explain_param(query, n_features=3) == k


def test_explain_true_is_five_or_every_feature_when_fewer() -> None:
    assert explain_param({"explain": " TRUE "}, n_features=8) == 5
    assert explain_param({"explain": "true"}, n_features=3) == 3


@pytest.mark.parametrize("sent", ["0", "4", "-1", "1.5", "yes", ""])
def test_explain_outside_one_to_the_features_is_refused_naming_it(sent: str) -> None:
    body = refused(explain_param({"explain": sent}, n_features=3), 400)
    assert locs(body) == ["explain"] and "from 1 to 3" in body.errors[0].msg


# ------------------------------------------------------------------ JSON bodies


def test_valid_records_carry_the_request_s_logging_and_explain_choices(single: Any) -> None:
    outcome = parse(
        single,
        records_json(GOOD, {**GOOD, "hour": None}),
        headers={LOG_HEADER: "off", EVENT_TIME_HEADER: "2024-05-01T12:00:00Z"},
        query="explain=2",
    )
    assert isinstance(outcome, RequestRecords) and len(outcome) == 2
    assert outcome[1].hour is None and outcome[0].city == "oslo"
    assert (outcome.log, outcome.event_time, outcome.explain) == (
        False,
        "2024-05-01T12:00:00+00:00",
        2,
    )


def test_defaults_log_with_serving_time_and_no_explanation(single: Any) -> None:
    outcome = parse(single, records_json(GOOD))
    assert isinstance(outcome, RequestRecords)
    assert (outcome.log, outcome.event_time, outcome.explain) == (True, None, 0)


def test_a_bad_field_is_a_400_naming_record_and_field(single: Any) -> None:
    body = refused(parse(single, records_json(GOOD, {**GOOD, "temp": 99.0})), 400)
    assert locs(body) == ["records[1].temp"]
    assert body.error.startswith("records[1].temp: ")


def test_every_bad_field_is_named(single: Any) -> None:
    missing = {k: v for k, v in GOOD.items() if k != "hour"}
    body = refused(parse(single, records_json({**GOOD, "extra": 1}, missing)), 400)
    assert locs(body) == ["records[0].extra", "records[1].hour"]


def test_an_unknown_category_names_the_categories(single: Any) -> None:
    body = refused(parse(single, records_json({**GOOD, "city": "paris"})), 400)
    assert locs(body) == ["records[0].city"]
    assert body.errors[0].msg == "unknown category; expected one of ['oslo', 'rome']"


def test_null_is_refused_where_the_feature_is_not_nullable(single: Any) -> None:
    body = refused(parse(single, records_json({**GOOD, "temp": None})), 400)
    assert locs(body) == ["records[0].temp"]


def test_more_records_than_the_route_takes_is_a_413(single: Any) -> None:
    body = refused(parse(single, records_json(*[GOOD] * 4)), 413)
    assert locs(body) == ["records"]


@pytest.mark.parametrize("sent", [b"", b'{"records": []}'])
def test_no_records_is_a_400_at_records(single: Any, sent: bytes) -> None:
    assert locs(refused(parse(single, sent), 400)) == ["records"]


def test_malformed_json_is_a_400_at_body(single: Any) -> None:
    assert locs(refused(parse(single, b'{"records": ['), 400)) == ["body"]


def test_a_header_problem_is_answered_before_the_body(single: Any) -> None:
    body = refused(parse(single, b"not json", headers={LOG_HEADER: "maybe"}), 400)
    assert locs(body) == [LOG_HEADER]
    body = refused(parse(single, b"not json", query="explain=9"), 400)
    assert locs(body) == ["explain"]


def test_no_content_type_is_read_as_json(single: Any) -> None:
    assert isinstance(parse(single, records_json(GOOD), media=None), RequestRecords)


def test_another_media_type_is_a_415_listing_what_the_route_takes(single: Any, batch: Any) -> None:
    body = refused(parse(single, records_json(GOOD), media="text/csv"), 415)
    assert locs(body) == ["body"] and "send application/json" in body.error
    assert NDJSON not in body.error
    body = refused(parse(batch, records_json(GOOD), media="text/csv"), 415)
    assert NDJSON in body.error


def test_json_lines_on_a_route_without_them_is_a_415(single: Any) -> None:
    refused(parse(single, json.dumps(GOOD).encode(), media=NDJSON), 415)


# ------------------------------------------------------------------ the body limit


def test_the_body_limit_is_per_record_up_to_the_route_s_ceiling(
    small_schema: ModelSchema,
) -> None:
    assert request_model("A", small_schema, 3, "").body_limit() == 3 * BYTES_PER_RECORD
    capped = request_model("B", small_schema, 10_000, "", max_body_bytes=1000)
    assert capped.body_limit() == 1000


def test_a_declared_length_over_the_limit_is_a_413_before_reading(single: Any) -> None:
    size = str(single.body_limit() + 1)
    body = refused(parse(single, records_json(GOOD), headers={"content-length": size}), 413)
    assert locs(body) == ["body"] and f"larger than {single.body_limit()} bytes" in body.error
    refused(parse(single, records_json(GOOD), headers={"content-length": "12abc"}), 413)


def test_a_streamed_body_over_the_limit_is_a_413(single: Any) -> None:
    chunk = b" " * 4096
    parts = [b'{"records": [', *[chunk] * 4, b"]}"]  # no Content-Length: read as it arrives
    assert locs(refused(parse(single, parts), 413)) == ["body"]


# ------------------------------------------------------------------ JSON lines


def test_json_lines_are_one_record_per_line_blank_lines_skipped(batch: Any) -> None:
    lines = [json.dumps(GOOD), "", json.dumps({**GOOD, "city": "rome"}), "   "]
    text = "\n".join(lines).encode()
    outcome = parse(batch, [text[:7], text[7:30], text[30:]], media=NDJSON)  # split mid-line
    assert isinstance(outcome, RequestRecords)
    assert [r.city for r in outcome] == ["oslo", "rome"]


def test_a_bad_line_is_named_by_its_record_index(batch: Any) -> None:
    text = "\n".join([json.dumps(GOOD), json.dumps({**GOOD, "hour": 30})]).encode()
    body = refused(parse(batch, text, media=NDJSON), 400)
    assert locs(body) == ["records[1].hour"]


def test_two_objects_on_one_line_are_refused_not_scored_as_two(batch: Any) -> None:
    text = f"{json.dumps(GOOD)},{json.dumps(GOOD)}".encode()
    body = refused(parse(batch, text, media=NDJSON), 400)
    assert locs(body) == ["records[0]"]
    assert "line 1 is not one JSON object" in body.errors[0].msg


def test_more_lines_than_the_route_takes_is_a_413(batch: Any) -> None:
    text = "\n".join([json.dumps(GOOD)] * 4).encode()
    assert locs(refused(parse(batch, text, media=NDJSON), 413)) == ["records"]


def test_no_lines_is_a_400_at_records(batch: Any) -> None:
    assert locs(refused(parse(batch, b"\n \n", media=NDJSON), 400)) == ["records"]


def test_the_batch_route_still_takes_a_json_body(batch: Any) -> None:
    outcome = parse(batch, records_json(GOOD, GOOD))
    assert isinstance(outcome, RequestRecords) and len(outcome) == 2


# ------------------------------------------------------------------ the answer and the docs


def test_a_refusal_answers_as_an_error_body(single: Any) -> None:
    outcome = parse(single, records_json({**GOOD, "temp": "warm"}))
    assert isinstance(outcome, Rejected)
    response = outcome.response()
    assert response.status_code == 400 and response.media_type == "application/json"
    assert ErrorBody.model_validate_json(bytes(response.body)) == outcome.body


def test_the_request_model_documents_the_schema(single: Any) -> None:
    doc = single.model_json_schema()
    records = doc["properties"]["records"]
    assert (records["minItems"], records["maxItems"]) == (1, 3)
    record = doc["$defs"]["Record"]["properties"]
    assert (record["temp"]["minimum"], record["temp"]["maximum"]) == (-50, 60)
    assert record["city"]["enum"] == ["oslo", "rome"]
