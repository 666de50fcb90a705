"""Candidates (docs/monitor.md#candidates) over HTTP; what each call does and audits is the
service's (monitor/service/candidates.py), which `python -m monitor candidates` calls too.

- `POST /v1/models/{model}/candidates` (operator): register a version (vetted exactly as
  `POST /v1/models`) and declare it a candidate;
- `PUT /v1/models/{model}/candidates/{version}` (operator): declare a registered version;
- `DELETE /v1/models/{model}/candidates/{version}` (operator): withdraw the API's declaration
  (a ModelMonitor's `spec.candidates` is withdrawn there, not here);
- `GET /v1/models/{model}/candidates` (reader): each candidate with its verdict.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from contract.registration import Registration
from monitor.api.context import AppContext
from monitor.api.http import ApiError, json_body, parse_body
from monitor.api.models import (
    AUTH_ERRORS,
    BODY_ERRORS,
    CANDIDATE_CONFLICT,
    CANDIDATE_NOT_FOUND,
    PARAMETER_ERRORS,
    CandidateDeclared,
    CandidateWithdrawn,
)
from monitor.api.routes.registration import artifact_limits
from monitor.api.routes.service_errors import answered
from monitor.service import candidates
from monitor.service.candidates import Declaration
from monitor.service.views import CandidateList


def _declared(model: str, declaration: Declaration) -> CandidateDeclared:
    entry = declaration.entry
    return CandidateDeclared.model_validate(
        {
            "model": model,
            "version": entry.version,
            "declared": declaration.added,
            "sources": list(entry.sources),
            "added_at": entry.added_at,
            "registration": declaration.registration,
        }
    )


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    as_operator = ctx.as_role("operator")

    @app.post(
        "/v1/models/{model}/candidates",
        status_code=201,
        response_model=CandidateDeclared,
        responses={
            200: {
                "model": CandidateDeclared,
                "description": "Already a candidate (from the API), same content",
            },
            **BODY_ERRORS,
            **AUTH_ERRORS,
            **CANDIDATE_CONFLICT,
        },
        dependencies=as_operator,
        openapi_extra=json_body(Registration),
    )
    async def post_candidate(model: str, request: Request, response: Response) -> CandidateDeclared:
        """Register a version (the body exactly as `POST /v1/models`: vetted the same way)
        and declare it a candidate of `model`: scored on the baseline's rows from then on,
        never served. 201 newly declared, 200 the API had declared it with this content."""
        reg = parse_body(Registration, await request.body())
        if reg.model != model:
            raise ApiError(
                422, f"is {reg.model!r}, but the path names the model {model!r}", "model"
            )
        raw = reg.artifact_bytes()
        with answered():
            declaration = await run_in_threadpool(
                candidates.register_and_declare, ctx.store(), reg, raw, artifact_limits(ctx)
            )
        if not declaration.added:
            response.status_code = 200
        return _declared(model, declaration)

    @app.put(
        "/v1/models/{model}/candidates/{version}",
        status_code=201,
        response_model=CandidateDeclared,
        responses={
            200: {"model": CandidateDeclared, "description": "Already a candidate (from the API)"},
            **CANDIDATE_NOT_FOUND,
            **AUTH_ERRORS,
            **PARAMETER_ERRORS,
        },
        dependencies=as_operator,
    )
    def put_candidate(model: str, version: str, response: Response) -> CandidateDeclared:
        """Declare an already registered version a candidate of `model` (no body). 201
        newly declared, 200 the API had declared it already."""
        with answered():
            declaration = candidates.declare(ctx.store(), model, version)
        if not declaration.added:
            response.status_code = 200
        return _declared(model, declaration)

    @app.delete(
        "/v1/models/{model}/candidates/{version}",
        response_model=CandidateWithdrawn,
        responses={
            **CANDIDATE_NOT_FOUND,
            **CANDIDATE_CONFLICT,
            **AUTH_ERRORS,
            **PARAMETER_ERRORS,
        },
        dependencies=as_operator,
    )
    def delete_candidate(model: str, version: str) -> CandidateWithdrawn:
        """Withdraw the API's declaration of `version` (its scored chunks are dropped once
        nothing declares it). 404 when it is not a candidate; 409, changing nothing, while a
        ModelMonitor's `spec.candidates` declares it (remove it there)."""
        with answered():
            removed = candidates.withdraw(ctx.store(), model, version)
        return CandidateWithdrawn(model=model, version=version, removed=removed)

    @app.get(
        "/v1/models/{model}/candidates",
        response_model=CandidateList,
        responses={**CANDIDATE_NOT_FOUND, **PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=ctx.as_reader(),
    )
    def get_candidates(model: str) -> CandidateList:
        """Every declared candidate: who declared it, since when, and its verdict (the
        operator's last, else computed now under the default candidate policy). 404 for a
        model the monitor knows nothing of."""
        with answered():
            return candidates.listing(ctx.store(), model)
