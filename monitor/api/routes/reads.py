"""Read-outs (reader token when one is set): versions, chunks, track record, audit, decisions."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query

from monitor.analysis.track_record import track_record
from monitor.api.context import AppContext
from monitor.api.http import ApiError
from monitor.api.models import AUTH_ERRORS, NOT_FOUND, PARAMETER_ERRORS, VersionSummary
from monitor.store.types import UnknownVersionError


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    as_reader = ctx.as_reader()

    @app.get(
        "/v1/models",
        response_model=list[VersionSummary],
        responses=AUTH_ERRORS,
        dependencies=as_reader,
    )
    def list_models() -> list[VersionSummary]:
        return [VersionSummary(**vars(v)) for v in ctx.store().versions()]

    @app.get(
        "/v1/models/{model}/versions/{version}",
        responses={**NOT_FOUND, **PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=as_reader,
    )
    def get_version(model: str, version: str) -> dict[str, Any]:
        """The registration as sent, without its artifact and reference rows."""
        try:
            return ctx.store().registration(model, version, with_reference=False)
        except UnknownVersionError:
            raise ApiError(404, f"{model}:{version} is not registered") from None

    @app.get(
        "/v1/models/{model}/chunks",
        responses={**PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=as_reader,
    )
    def get_chunks(model: str, version: str | None = None) -> list[dict[str, Any]]:
        """ChunkEvidence dicts (monitor/core/evidence.py) in arrival order: `chunk_index`
        0-based per version, realized metrics with `realized_sampling_error`, and for chunks
        by period `period_start`, `period_end` (RFC 3339) and `partial`."""
        return ctx.store().chunk_dicts(model, version)

    @app.get(
        "/v1/models/{model}/versions/{version}/track-record",
        responses={**PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=as_reader,
    )
    def get_track_record(model: str, version: str) -> dict[str, Any]:
        """How wrong this version's label-free estimates have been: per metric, MAE, bias and
        interval coverage over its last labelled chunks (monitor/analysis/track_record.py)."""
        chunks = ctx.store().chunks(model, version)
        return {m: vars(t) for m, t in track_record(chunks).items()}

    @app.get("/v1/audit", responses={**PARAMETER_ERRORS, **AUTH_ERRORS}, dependencies=as_reader)
    def get_audit(
        model: str | None = None,
        kind: str | None = None,
        limit: int | None = Query(default=None, ge=1, le=100_000),
    ) -> list[dict[str, Any]]:
        """Append-only audit records, oldest first (the newest `limit`)."""
        return ctx.store().audit(model, kind, limit)

    @app.get("/v1/decisions", responses={**PARAMETER_ERRORS, **AUTH_ERRORS}, dependencies=as_reader)
    def get_decisions(model: str | None = None) -> list[dict[str, Any]]:
        """Audit records of the operator's decisions (those that name a trigger)."""
        # Each decision is audited under the act it led to (rollback, dry-run-rollback,
        # rollback-superseded/-missing, known-good, retraining-recommended,
        # rollback-unavailable), every one with its `trigger` key; no writer has ever used
        # a kind "decision", so the trigger is the whole test (docstring: the OpenAPI text).
        return [e for e in ctx.store().audit(model) if "trigger" in e]
