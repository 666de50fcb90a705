"""Response bodies of the monitor's HTTP API (docs/contracts.md §3) and its error table.

The request bodies that cross from predictors and label feeders are the shared contract
(`contract/records.py`, `contract/registration.py`); the candidate listing, which the CLI
prints too, is the service's (`monitor/service/views.py`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from contract import errors
from contract.errors import ErrorBody


class RecordsAccepted(BaseModel):
    accepted: int = Field(description="Records stored by this request")
    duplicates: int = Field(description="Records whose prediction_id was already stored")


class LabelsAccepted(BaseModel):
    accepted: int


class RegistrationResult(BaseModel):
    model: str
    version: str
    status: Literal["created", "unchanged"]


class VersionSummary(BaseModel):
    model: str
    version: str
    registered_at: str | None = Field(description="None: records arrived, registration not yet")
    learner: str | None
    release: str | None
    state: Literal["registered", "unregistered", "known-good", "rejected"]
    records: int


class ClearRejectionResult(BaseModel):
    model: str
    version: str
    cleared: bool = Field(description="False when the version was not rejected")


class KnownGoodResult(BaseModel):
    model: str
    version: str
    previous: str | None = Field(description="The known-good version before (None: none)")


class CandidateDeclared(BaseModel):
    model: str
    version: str
    declared: bool = Field(description="False when the API had declared it already")
    sources: list[Literal["api", "spec"]]
    added_at: str
    registration: Literal["created", "unchanged"] | None = Field(
        default=None, description="POST only: whether the registration was new"
    )


class CandidateWithdrawn(BaseModel):
    model: str
    version: str
    removed: bool


class Health(BaseModel):
    status: Literal["ok", "starting", "database unreachable"]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Error answers of each kind of route, for FastAPI's `responses=` (all are `ErrorBody`s).
SERVER_ERROR: dict[int | str, dict[str, Any]] = {
    500: _error("Unexpected server error (see the monitor's log)"),
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed JSON or an unusable payload"),
    413: _error("Body or record count over the limit"),
    422: _error("A field is missing or invalid (each named in errors)"),
}
PARAMETER_ERRORS: dict[int | str, dict[str, Any]] = {
    422: _error("A path or query parameter is invalid (named in errors)"),
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or unknown bearer token"),
    403: _error(
        "The token of a role that may not do this (or, registering with the"
        " predictor token: a version not named after its artifact's sha256; or a body naming"
        " a model the credential may not write: another model's, or, with the global token,"
        " a model with credentials of its own in MONITOR_MODEL_TOKENS_FILE)"
    ),
    503: _error("The role's token (MONITOR_<ROLE>_TOKEN) is not configured"),
}
NOT_REGISTERED: dict[int | str, dict[str, Any]] = {
    425: _error("A record's model version is not registered (yet): retry after Retry-After"),
}
LABEL_AHEAD: dict[int | str, dict[str, Any]] = {
    425: _error(
        "With per-model credentials (MONITOR_MODEL_TOKENS_FILE): a label's record is not"
        " stored yet, so its model is unknown: retry after Retry-After"
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("Unknown model or version")}
REPORTS_BUSY: dict[int | str, dict[str, Any]] = {
    503: _error(
        "As many reports as MONITOR_REPORT_CONCURRENCY are being built (retry after"
        " Retry-After), or the role's token is not configured"
    ),
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _error("Same version, different content (or, declaring known-good: a rejected one)")
}
CANDIDATE_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("Unknown model, version not registered, or version not a candidate")
}
CANDIDATE_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _error(
        "Registering: same version, different content; withdrawing: a ModelMonitor's"
        " spec.candidates still declares it (remove it there)"
    )
}


def json_errors(*groups: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The groups (and the 500) for a route whose own responses are not JSON (the report):
    FastAPI would file a `model` under the route's media type, the error body is JSON."""
    merged = {**SERVER_ERROR, **{k: v for group in groups for k, v in group.items()}}
    return {status: errors.response(spec["description"]) for status, spec in merged.items()}
