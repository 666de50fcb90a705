"""Operator actions (operator token): clear a rejection, declare a version known-good; each
the service's (monitor/service/rejections.py, known_good.py), audited with `by` "api"."""

from __future__ import annotations

from fastapi import FastAPI

from monitor.api.context import AppContext
from monitor.api.models import (
    AUTH_ERRORS,
    CONFLICT,
    NOT_FOUND,
    PARAMETER_ERRORS,
    ClearRejectionResult,
    KnownGoodResult,
)
from monitor.api.routes.service_errors import answered
from monitor.service import known_good, rejections

ACTOR = "api"


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    as_operator = ctx.as_role("operator")

    @app.post(
        "/v1/models/{model}/versions/{version}/clear-rejection",
        response_model=ClearRejectionResult,
        responses={**NOT_FOUND, **AUTH_ERRORS, **PARAMETER_ERRORS},
        dependencies=as_operator,
    )
    def clear_rejection(model: str, version: str) -> ClearRejectionResult:
        """Allow a rejected version to run again (the operator stops rolling it back)."""
        with answered():
            cleared = rejections.clear_rejection(ctx.store(), model, version, ACTOR)
        return ClearRejectionResult(model=model, version=version, cleared=cleared)

    @app.post(
        "/v1/models/{model}/versions/{version}/known-good",
        response_model=KnownGoodResult,
        responses={**NOT_FOUND, **AUTH_ERRORS, **PARAMETER_ERRORS, **CONFLICT},
        dependencies=as_operator,
    )
    def declare_known_good(model: str, version: str) -> KnownGoodResult:
        """Declare a registered version known-good (audited `known-good-declared`): the
        baseline a first release is judged against and rolled back to."""
        with answered():
            previous = known_good.declare_known_good(ctx.store(), model, version, ACTOR)
        return KnownGoodResult(model=model, version=version, previous=previous)
