"""Candidates (docs/monitor.md#candidates): versions registered but not serving, judged on
the rows the baseline serves.

- `POST /v1/models/{model}/candidates` (operator): register a version (vetted exactly as
  `POST /v1/models`, `vet_and_register`) and declare it a candidate;
- `PUT /v1/models/{model}/candidates/{version}` (operator): declare a registered version;
- `DELETE /v1/models/{model}/candidates/{version}` (operator): withdraw the API's declaration
  (a ModelMonitor's `spec.candidates` is withdrawn there, not here);
- `GET /v1/models/{model}/candidates` (reader): each candidate with its verdict.

Declarations are `CandidateState`'s (monitor/memory/candidates.py), source "api"; each change is
audited (`candidate-added`, `candidate-removed`). `candidate_listing` is also what
`python -m monitor candidates` prints.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
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
    CandidateInfo,
    CandidateList,
    CandidateVerdictBody,
    CandidateWithdrawn,
)
from monitor.api.routes.registration import vet_and_register
from monitor.core.times import now_iso
from monitor.decision.policy import Policy
from monitor.memory.candidates import CandidateEntry, CandidateState
from monitor.operator.inputs import candidate_verdict
from monitor.store.protocol import Store

SOURCE = "api"


def candidate_listing(store: Store, model: str) -> CandidateList:
    """Every declared candidate of `model` with its verdict: the operator's last stored one,
    else one computed now from its chunks under the default candidate policy (no
    ModelMonitor has judged it, or the stored one is unreadable)."""
    state = CandidateState(store)
    stored = state.verdicts(model)
    policy = Policy(model=model, target_name="")  # only its default candidate_policy is used
    out = []
    for version, entry in sorted(state.entries(model).items()):
        verdict: CandidateVerdictBody | None = None
        if version in stored:
            try:
                verdict = CandidateVerdictBody.model_validate(stored[version])
            except ValidationError:
                verdict = None
        if verdict is None:
            computed = candidate_verdict(store, policy, version)
            if computed is not None:
                verdict = CandidateVerdictBody.model_validate(computed.to_json())
        out.append(
            CandidateInfo(
                version=version,
                sources=list(entry.sources),  # type: ignore[arg-type]
                added_at=entry.added_at,
                added_by=entry.added_by,
                verdict=verdict,
            )
        )
    return CandidateList(model=model, candidates=out)


def _declare(store: Store, model: str, version: str) -> tuple[bool, CandidateEntry]:
    """Declare `version` from the API (audited when new); (newly declared, its entry)."""
    state = CandidateState(store)
    now = now_iso()
    added = state.add(model, version, SOURCE, at=now, by="operator")
    entry = state.entries(model)[version]
    if added:
        store.append_audit(
            {
                "kind": "candidate-added",
                "model": model,
                "version": version,
                "by": SOURCE,
                "sources": list(entry.sources),
            }
        )
    return added, entry


def _declared(model: str, added: bool, entry: CandidateEntry, **extra: Any) -> CandidateDeclared:
    return CandidateDeclared(
        model=model,
        version=entry.version,
        declared=added,
        sources=list(entry.sources),  # type: ignore[arg-type]
        added_at=entry.added_at,
        **extra,
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

        def work() -> CandidateDeclared:
            status = vet_and_register(ctx, reg, raw)
            added, entry = _declare(ctx.store(), model, reg.version)
            return _declared(model, added, entry, registration=status)

        result = await run_in_threadpool(work)
        if not result.declared:
            response.status_code = 200
        return result

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
        st = ctx.store()
        if (model, version) not in st.registered_pairs():
            raise ApiError(404, f"{model}:{version} is not registered", "version")
        added, entry = _declare(st, model, version)
        if not added:
            response.status_code = 200
        return _declared(model, added, entry)

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
        st = ctx.store()
        state = CandidateState(st)
        entry = state.entries(model).get(version)
        if entry is None:
            raise ApiError(404, f"{model}:{version} is not a candidate", "version")
        if "spec" in entry.sources:
            raise ApiError(
                409,
                f"{model}:{version} is declared by a ModelMonitor's spec.candidates:"
                " remove it there",
                "version",
            )
        removed, left = state.remove(model, version, SOURCE)
        if removed:
            st.append_audit(
                {
                    "kind": "candidate-removed",
                    "model": model,
                    "version": version,
                    "by": SOURCE,
                    "sources": list(left),
                }
            )
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
        st = ctx.store()
        listing = candidate_listing(st, model)
        if not listing.candidates and model not in st.models():
            raise ApiError(404, f"model {model!r} is unknown", "model")
        return listing
