"""Operator actions (operator token): clear a rejection, declare a version known-good."""

from __future__ import annotations

from fastapi import FastAPI

from monitor.api.context import AppContext
from monitor.api.http import ApiError
from monitor.api.models import (
    AUTH_ERRORS,
    CONFLICT,
    NOT_FOUND,
    PARAMETER_ERRORS,
    ClearRejectionResult,
    KnownGoodResult,
)


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
        st = ctx.store()
        known = {v.version for v in st.versions(model)}
        if version not in known and version not in st.rejected_versions(model):
            raise ApiError(404, f"{model}:{version} is unknown")
        cleared = st.clear_rejection(model, version, actor="api")
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
        st = ctx.store()
        if version not in {v.version for v in st.versions(model) if v.registered_at}:
            raise ApiError(404, f"{model}:{version} is not registered", "version")
        if version in st.rejected_versions(model):
            raise ApiError(
                409, f"{model}:{version} is rejected; clear the rejection first", "version"
            )
        previous = st.declare_known_good(model, version, actor="api")
        return KnownGoodResult(model=model, version=version, previous=previous)
