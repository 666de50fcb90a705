"""`POST /v1/models`: register a model version (its artifact vetted in a child process by
the service, monitor/service/registration.py). The route checks what only HTTP knows (which
token sent it: a predictor's must name the version after the artifact's sha256, and a
per-model predictor credential registers only its own model).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from contract.registration import Registration, digest_bound
from monitor.api.auth import Caller
from monitor.api.context import AppContext
from monitor.api.http import ApiError, json_body, parse_body
from monitor.api.models import AUTH_ERRORS, BODY_ERRORS, CONFLICT, RegistrationResult
from monitor.api.routes.service_errors import answered
from monitor.service.registration import ArtifactLimits, register


def artifact_limits(ctx: AppContext) -> ArtifactLimits:
    """What the vetting child may use, from the settings."""
    settings = ctx.settings
    return ArtifactLimits(settings.artifacts.memory_bytes, settings.artifacts.timeout_seconds)


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    @app.post(
        "/v1/models",
        status_code=201,
        response_model=RegistrationResult,
        responses={
            200: {"model": RegistrationResult, "description": "Same content registered before"},
            **BODY_ERRORS,
            **AUTH_ERRORS,
            **CONFLICT,
        },
        openapi_extra=json_body(Registration),
    )
    async def post_model(
        request: Request,
        response: Response,
        caller: Caller = Depends(ctx.guard.require("predictor", "operator")),
    ) -> RegistrationResult:
        """Register a model version with its schema, reference set and artifact (predictor
        token: the version must be named after the artifact's sha256; operator token: any
        name; a per-model predictor credential: its own model only). The artifact is first
        loaded and scored in an isolated child process."""
        reg = parse_body(Registration, await request.body())
        ctx.guard.refuse_foreign(caller, [reg.model], "model")
        raw = reg.artifact_bytes()
        if caller.role == "predictor" and not digest_bound(reg.version, raw):
            raise ApiError(
                403,
                f"version {reg.version!r} does not end in its artifact's sha256 prefix"
                " (`<release>-<sha256[:10]>`, as `modelguard package` names versions);"
                " only the operator token registers other names",
                "version",
            )
        with answered():
            status = await run_in_threadpool(register, ctx.store(), reg, raw, artifact_limits(ctx))
        if status == "unchanged":
            response.status_code = 200
        return RegistrationResult(model=reg.model, version=reg.version, status=status)
