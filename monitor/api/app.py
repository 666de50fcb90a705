"""The monitor's HTTP API (docs/contracts.md §3): ingest, registration, read-outs, /metrics.

`create_app(settings, store=None)` builds the FastAPI app; `python -m monitor serve` runs it
with uvicorn. Handlers are plain functions (FastAPI runs them in its thread pool) because the
store is synchronous SQLite. A bad payload is refused before anything is written: the whole
request body is validated first, then stored in one transaction. Every error answer is a
`contract.errors.ErrorBody` (monitor/api/http.py). One `VersionCache` (fitted calculators per
model version) per app: the analysis loop fills it, `GET /reports/{model}` reuses it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from contract.records import LabelsBatch, RecordsBatch
from contract.registration import Registration
from monitor import metrics
from monitor.analysis.cycle import VersionCache
from monitor.analysis.report import render_report
from monitor.api.http import (
    ApiError,
    BodyLimit,
    install_error_handlers,
    json_body,
    parse_body,
    publish_body_schemas,
)
from monitor.api.models import (
    AUTH_ERRORS,
    BODY_ERRORS,
    CONFLICT,
    NOT_FOUND,
    PARAMETER_ERRORS,
    SERVER_ERROR,
    ClearRejectionResult,
    Health,
    KnownGoodResult,
    LabelsAccepted,
    RecordsAccepted,
    RegistrationResult,
    VersionSummary,
    json_errors,
)
from monitor.loops.background import BackgroundLoops, analysis_pass, reconcile_pass, waking
from monitor.settings import MonitorSettings, log_effective
from monitor.store.sqlite import Store
from monitor.store.types import Conflict, NotFound

log = logging.getLogger("modelguard.monitor")


def create_app(
    settings: MonitorSettings | None = None, store: Store | None = None, *, background: bool = True
) -> FastAPI:
    """The monitor app. Without `store` it opens `settings.db_path` at start-up and closes it
    at shutdown; `background=False` leaves out the analysis and reconcile loops."""
    settings = settings or MonitorSettings()
    holder: dict[str, Store] = {} if store is None else {"store": store}
    caches: dict[str, VersionCache] = {}  # "cache": the analysis loop's, reused by reports

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_effective(settings)
        owned = "store" not in holder
        if owned:
            holder["store"] = Store(settings.db_path)
        st = holder["store"]
        cache = caches["cache"] = VersionCache(st, settings.chunk_size)
        metrics.count_calculator_fits(lambda: cache.fits)
        loops = BackgroundLoops()
        if background:
            loops.start(
                "analysis",
                lambda: waking(analysis_pass(st, settings, cache), loops.waker("reconcile")),
                settings.analysis_interval_seconds,
            )
            loops.start(
                "reconcile",
                lambda: reconcile_pass(st, settings, loops.waker("reconcile"), loops.stop_event),
                settings.reconcile_interval_seconds,
            )
        app.state.loops = loops
        try:
            yield
        finally:
            loops.stop()
            metrics.count_calculator_fits(None)
            caches.clear()
            if owned:
                holder.pop("store").close()

    app = FastAPI(
        title="modelguard monitor",
        version="0.1.0",
        description="Inference records, delayed labels and model registrations in; "
        "label-free performance estimates, drift and rollback evidence out.",
        lifespan=lifespan,
        responses=SERVER_ERROR,  # any route: an unexpected failure is a 500 ErrorBody
        # FastAPI's built-in OpenTelemetry instrumentation: off. It exports nothing unless
        # configured, but costs CPU on the ingest path; /metrics is our observability.
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    publish_body_schemas(app, [RecordsBatch, LabelsBatch])

    def the_store() -> Store:
        st = holder.get("store")
        if st is None:
            raise ApiError(503, "the store is not open yet")
        return st

    bearer = HTTPBearer(auto_error=False, description="MONITOR_REGISTRATION_TOKEN")

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> None:
        expected = settings.token()
        if not expected:
            raise ApiError(503, "registration is disabled: MONITOR_REGISTRATION_TOKEN unset")
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    def store_records(batch: RecordsBatch) -> RecordsAccepted:
        n = len(batch.records)
        if n > settings.max_records_per_request:
            metrics.records_rejected("too_many", n)
            raise ApiError(
                413, f"{n} records, at most {settings.max_records_per_request} allowed", "records"
            )
        rows = [
            {
                "prediction_id": r.prediction_id,
                "model": r.model,
                "version": r.version,
                "timestamp": r.timestamp,
                "event_time": r.event_time,
                "features": r.features,
                "probability": r.probability,
                "predicted_class": r.predicted_class,
            }
            for r in batch.records
        ]
        result = the_store().append_records_detailed(rows)
        for (model, version), count in result.accepted_by_version.items():
            metrics.records_ingested(model, version, count)
        for model, count in result.labels_joined_by_model.items():
            metrics.labels_joined(model, count)
        return RecordsAccepted(accepted=result.accepted, duplicates=result.duplicates)

    @app.post(
        "/v1/records",
        status_code=202,
        response_model=RecordsAccepted,
        responses=BODY_ERRORS,
        openapi_extra=json_body(RecordsBatch),
    )
    async def post_records(request: Request) -> RecordsAccepted:
        """Store inference records; a `prediction_id` seen before is ignored (retries).

        The body is parsed and validated in one pass by pydantic-core (no `json.loads`
        first): the hot path of ingest. Then stored in one transaction.
        """
        batch = parse_body(RecordsBatch, await request.body())
        return await run_in_threadpool(store_records, batch)

    def store_labels(batch: LabelsBatch) -> LabelsAccepted:
        n = len(batch.labels)
        if n > settings.max_records_per_request:
            raise ApiError(
                413, f"{n} labels, at most {settings.max_records_per_request} allowed", "labels"
            )
        result = the_store().append_labels_detailed([lab.model_dump() for lab in batch.labels])
        joined = sum(result.joined_by_model.values())
        for model, count in result.joined_by_model.items():
            metrics.labels_ingested(model, count)
            metrics.labels_joined(model, count)
        if result.accepted > joined:  # the record has not arrived (yet): model unknown
            metrics.labels_ingested("unknown", result.accepted - joined)
        return LabelsAccepted(accepted=result.accepted)

    @app.post(
        "/v1/labels",
        status_code=202,
        response_model=LabelsAccepted,
        responses=BODY_ERRORS,
        openapi_extra=json_body(LabelsBatch),
    )
    async def post_labels(request: Request) -> LabelsAccepted:
        """Store ground truth by prediction id: before or after its record; a repeat overwrites."""
        batch = parse_body(LabelsBatch, await request.body())
        return await run_in_threadpool(store_labels, batch)

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
        dependencies=[Depends(require_token)],
    )
    def post_model(reg: Registration, response: Response) -> RegistrationResult:
        """Register a model version with its schema, reference set and artifact (token)."""
        _check_booster(reg.artifact_bytes())
        try:
            status = the_store().register(reg)
        except Conflict as exc:
            raise ApiError(409, str(exc)) from None
        if status == "unchanged":
            response.status_code = 200
        else:
            the_store().append_audit(
                {"kind": "registered", "model": reg.model, "version": reg.version}
            )
            log.info("registered %s:%s", reg.model, reg.version)
        return RegistrationResult(model=reg.model, version=reg.version, status=status)

    @app.get("/v1/models", response_model=list[VersionSummary])
    def list_models() -> list[VersionSummary]:
        return [VersionSummary(**vars(v)) for v in the_store().versions()]

    @app.get("/v1/models/{model}/versions/{version}", responses={**NOT_FOUND, **PARAMETER_ERRORS})
    def get_version(model: str, version: str) -> dict[str, Any]:
        """The registration as sent, without its artifact and reference rows."""
        try:
            return the_store().registration(model, version, with_reference=False)
        except NotFound:
            raise ApiError(404, f"{model}:{version} is not registered") from None

    @app.get("/v1/models/{model}/chunks", responses=PARAMETER_ERRORS)
    def get_chunks(model: str, version: str | None = None) -> list[dict[str, Any]]:
        """ChunkEvidence dicts (monitor/evidence.py) in arrival order."""
        return the_store().chunk_dicts(model, version)

    @app.get("/v1/audit", responses=PARAMETER_ERRORS)
    def get_audit(
        model: str | None = None,
        kind: str | None = None,
        limit: int | None = Query(default=None, ge=1, le=100_000),
    ) -> list[dict[str, Any]]:
        """Append-only audit records, oldest first (the newest `limit`)."""
        return the_store().audit(model, kind, limit)

    @app.get("/v1/decisions", responses=PARAMETER_ERRORS)
    def get_decisions(model: str | None = None) -> list[dict[str, Any]]:
        """Audit records of the operator's decisions (those that name a trigger)."""
        return [
            e for e in the_store().audit(model) if "trigger" in e or e.get("kind") == "decision"
        ]

    @app.post(
        "/v1/models/{model}/versions/{version}/clear-rejection",
        response_model=ClearRejectionResult,
        responses={**NOT_FOUND, **AUTH_ERRORS, **PARAMETER_ERRORS},
        dependencies=[Depends(require_token)],
    )
    def clear_rejection(model: str, version: str) -> ClearRejectionResult:
        """Allow a rejected version to run again (the operator stops rolling it back)."""
        st = the_store()
        known = {v.version for v in st.versions(model)}
        if version not in known and version not in st.rejected_versions(model):
            raise ApiError(404, f"{model}:{version} is unknown")
        cleared = st.clear_rejection(model, version, actor="api")
        return ClearRejectionResult(model=model, version=version, cleared=cleared)

    @app.post(
        "/v1/models/{model}/versions/{version}/known-good",
        response_model=KnownGoodResult,
        responses={**NOT_FOUND, **AUTH_ERRORS, **PARAMETER_ERRORS, **CONFLICT},
        dependencies=[Depends(require_token)],
    )
    def declare_known_good(model: str, version: str) -> KnownGoodResult:
        """Declare a registered version known-good (audited `known-good-declared`): the
        baseline a first release is judged against and rolled back to."""
        st = the_store()
        if version not in {v.version for v in st.versions(model) if v.registered_at}:
            raise ApiError(404, f"{model}:{version} is not registered", "version")
        if version in st.rejected_versions(model):
            raise ApiError(
                409, f"{model}:{version} is rejected; clear the rejection first", "version"
            )
        previous = st.declare_known_good(model, version, actor="api")
        return KnownGoodResult(model=model, version=version, previous=previous)

    @app.get(
        "/reports/{model}",
        response_class=HTMLResponse,
        responses=json_errors(NOT_FOUND, PARAMETER_ERRORS),
    )
    def get_report(model: str) -> HTMLResponse:
        """The HTML report of every version of `model`, with the analysis loop's calculators."""
        st = the_store()
        if model not in st.models():
            raise ApiError(404, f"model {model!r} is unknown")
        cache = caches.get("cache")
        if cache is None:  # like the store: opened by the lifespan, before anything is served
            raise ApiError(503, "the analysis cache is not ready yet")
        return HTMLResponse(render_report(st, model, cache=cache))

    @app.get("/metrics", response_class=Response)
    def get_metrics() -> Response:
        return Response(metrics.METRICS.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)

    @app.get("/livez", response_model=Health)
    def livez() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    def readyz() -> Response:
        ready = "store" in holder
        return JSONResponse({"status": "ok" if ready else "starting"}, 200 if ready else 503)

    return app


def _check_booster(raw: bytes) -> None:
    """400 unless the artifact loads as an XGBoost booster (UBJSON/JSON: no code runs)."""
    import xgboost

    try:
        xgboost.Booster().load_model(bytearray(raw))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ApiError(400, f"not a loadable XGBoost booster ({first})", "artifact") from None
