"""`POST /v1/models`: register a model version (its artifact vetted in a child process).

`vet_and_register` is the one path a registration takes into the store, whoever sends it:
this route, and `POST /v1/models/{model}/candidates` (monitor/api/routes/candidates.py).
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from contract.registration import Registration, digest_bound
from monitor.analysis.artifact import ArtifactRefusedError, vet
from monitor.api.auth import Role
from monitor.api.context import AppContext
from monitor.api.http import ApiError, json_body, parse_body
from monitor.api.models import AUTH_ERRORS, BODY_ERRORS, CONFLICT, RegistrationResult
from monitor.store.types import RegistrationConflictError

log = logging.getLogger("modelguard.monitor")


def vet_and_register(
    ctx: AppContext, reg: Registration, raw: bytes
) -> Literal["created", "unchanged"]:
    """Store `reg` (its artifact `raw` first loaded and scored in an isolated child when the
    version is new) and audit a new one: "created", or "unchanged" for the same content
    again. Raises `ApiError`: 400/422 naming `artifact` or `reference` when vetting fails,
    409 on a changed registration under a stored name. Blocking: run it in a thread."""
    st = ctx.store()
    settings = ctx.settings
    if (reg.model, reg.version) in st.registered_pairs():
        holdout = None  # the same content again (200) or a conflict (409): no child
    else:
        try:
            vetted = vet(
                raw,
                reg.schema.model_dump(mode="json"),
                reg.reference,
                memory_bytes=settings.artifact_memory_bytes,
                timeout_seconds=settings.artifact_timeout_seconds,
            )
        except ArtifactRefusedError as exc:
            log.warning("registration of %s:%s refused: %s", reg.model, reg.version, exc)
            raise ApiError(exc.status, str(exc), exc.loc) from None
        holdout = vetted.holdout
    try:
        status = st.register(reg, holdout=holdout)
    except RegistrationConflictError as exc:
        raise ApiError(409, str(exc)) from None
    if status == "created":
        st.append_audit({"kind": "registered", "model": reg.model, "version": reg.version})
        log.info("registered %s:%s", reg.model, reg.version)
    return status


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
        role: Role | None = Depends(ctx.guard.require("predictor", "operator")),
    ) -> RegistrationResult:
        """Register a model version with its schema, reference set and artifact (predictor
        token: the version must be named after the artifact's sha256; operator token: any
        name). The artifact is first loaded and scored in an isolated child process."""
        reg = parse_body(Registration, await request.body())
        raw = reg.artifact_bytes()
        if role == "predictor" and not digest_bound(reg.version, raw):
            raise ApiError(
                403,
                f"version {reg.version!r} does not end in its artifact's sha256 prefix"
                " (`<release>-<sha256[:10]>`, as `modelguard package` names versions);"
                " only the operator token registers other names",
                "version",
            )
        status = await run_in_threadpool(vet_and_register, ctx, reg, raw)
        if status == "unchanged":
            response.status_code = 200
        return RegistrationResult(model=reg.model, version=reg.version, status=status)
