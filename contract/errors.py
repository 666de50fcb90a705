"""The one error body of both HTTP APIs, the predictor's and the monitor's (docs/contracts.md).

Every 4xx and 5xx either server produces is an `ErrorBody`:

    {"error": "records[3].age: Input should be less than or equal to 100",
     "errors": [{"loc": "records[3].age", "msg": "Input should be less than or equal to 100"}]}

`error` is one line for people and logs; `errors` names each part of the request at fault
(empty when the request as a whole was refused: a wrong token, an unknown model). Both servers
publish these two models in their OpenAPI documents under the names `ErrorBody` and
`FieldError`, with the same JSON schema.

`field_errors` turns pydantic's `ValidationError.errors()` (or FastAPI's
`RequestValidationError.errors()`) into that list: dotted and indexed locations, one entry
per location, and a feature value's per-branch union errors folded into one message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_FIELD_ERRORS = 50  # entries in `errors`; the summary counts the rest
SUMMARY_ERRORS = 5  # entries spelled out in `error`

# Union branch tags pydantic appends to a location when every branch of a union failed.
_UNION_BRANCHES = frozenset({"float", "int", "str", "bool", "none"})
FEATURE_VALUE_PROBLEM = "must be a finite number, a string or null"
NOT_FINITE_PROBLEM = "must be finite (NaN and infinity are not allowed; send null)"


class FieldError(BaseModel):
    """One refused part of a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loc: str = Field(
        description='Where, as a path into the request body: "records[3].age", "records", '
        '"body" (the body as a whole)',
        examples=["records[3].age"],
    )
    msg: str = Field(
        description="What is wrong there", examples=["Input should be less than or equal to 100"]
    )


class ErrorBody(BaseModel):
    """The body of every error answer (4xx and 5xx) of the predictor and the monitor."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="One-line summary of what was refused and why")
    errors: list[FieldError] = Field(
        description=f"The parts of the request at fault, at most {MAX_FIELD_ERRORS}; empty when "
        "the request as a whole was refused (authentication, unknown resource, server error)",
    )

    @classmethod
    def about(cls, message: str, loc: str | None = None) -> ErrorBody:
        """One problem: of the part at `loc`, or (without `loc`) of the request as a whole."""
        if loc is None:
            return cls(error=message, errors=[])
        return cls(error=f"{loc}: {message}", errors=[FieldError(loc=loc, msg=message)])

    @classmethod
    def listing(cls, errors: Sequence[FieldError]) -> ErrorBody:
        """Several problems, the first few of them spelled out in the summary."""
        return cls(error=summarize(errors), errors=list(errors))

    @classmethod
    def from_validation(
        cls, errors: Sequence[Mapping[str, Any]], explain: Explain | None = None
    ) -> ErrorBody:
        """`ValidationError.errors()` as an error body (see `field_errors`)."""
        return cls.listing(field_errors(errors, explain=explain))


# (pydantic error, its location) -> a better message than pydantic's, or None to keep it.
Explain = Callable[[Mapping[str, Any], str], str | None]


def location(parts: Sequence[Any]) -> str:
    """("body", "records", 3, "probability") -> "records[3].probability"; () -> "body".

    A leading "body" (FastAPI's prefix for the request body) is left out.
    """
    out = ""
    for i, part in enumerate(parts):
        if i == 0 and part == "body":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def field_errors(
    errors: Sequence[Mapping[str, Any]],
    *,
    explain: Explain | None = None,
    limit: int = MAX_FIELD_ERRORS,
) -> list[FieldError]:
    """Pydantic's error dicts -> `FieldError`s, one per location, in the order they came.

    - Malformed JSON is reported at "body", with the position when there is one.
    - A feature value (`features.<name>`: a finite number, a string or null) that fails every
      union branch gives pydantic one error per branch: they become one message, the
      NaN/infinity one when that was the reason.
    - Otherwise the first error of a location wins (a field failing several checks, or a
      nullable field failing both its branches, is reported once); pydantic's "Value error, "
      prefix is dropped. `explain` may replace a message (e.g. list a field's categories).
    """
    found: dict[str, str] = {}
    for err in errors:
        parts = tuple(err.get("loc", ()))
        kind = err.get("type")
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if kind == "json_invalid":
            where = f" at position {parts[-1]}" if parts and isinstance(parts[-1], int) else ""
            reason = (err.get("ctx") or {}).get("error")
            msg = f"Invalid JSON{where}: {reason}" if reason else msg
            found.setdefault("body", msg)
            continue
        if _is_feature_branch(parts):
            loc = location(parts[:-1])
            if kind == "finite_number":
                found[loc] = NOT_FINITE_PROBLEM
            else:
                found.setdefault(loc, FEATURE_VALUE_PROBLEM)
            continue
        loc = location(parts)
        if loc in found:
            continue
        if explain is not None:
            msg = explain(err, loc) or msg
        found[loc] = msg
    return [FieldError(loc=loc, msg=msg) for loc, msg in list(found.items())[:limit]]


def _is_feature_branch(parts: tuple[Any, ...]) -> bool:
    """True for `(..., "features", <name>, <branch>)`: one branch of a feature value's union."""
    return (
        len(parts) >= 3
        and parts[-3] == "features"
        and isinstance(parts[-1], str)
        and parts[-1] in _UNION_BRANCHES
    )


def summarize(errors: Sequence[FieldError], shown: int = SUMMARY_ERRORS) -> str:
    """ "records[1].age: ...; records[2].temp: ...; and 3 more" (at least "invalid request")."""
    if not errors:
        return "invalid request"
    text = "; ".join(f"{e.loc}: {e.msg}" for e in errors[:shown])
    if len(errors) > shown:
        text += f"; and {len(errors) - shown} more"
    return text


def openapi_schemas(ref_template: str = "#/components/schemas/{model}") -> dict[str, Any]:
    """JSON schemas of `ErrorBody` and `FieldError`, as OpenAPI components (name -> schema).

    What FastAPI publishes for the monitor; the predictor adds the same to BentoML's document.
    """
    schema = ErrorBody.model_json_schema(ref_template=ref_template, mode="serialization")
    defs = schema.pop("$defs", {})
    return {**defs, "ErrorBody": schema}


def response(description: str) -> dict[str, Any]:
    """An OpenAPI response object whose JSON body is an `ErrorBody`."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}
