"""The monitor's HTTP API (docs/contracts.md §3): ingest, registration, read-outs, /metrics.

`create_app(settings, store=None)` builds the FastAPI app; `python -m monitor serve` runs it
with uvicorn. Handlers are plain functions (FastAPI runs them in its thread pool) because the
store is synchronous SQLite. A bad payload is refused before anything is written: the whole
request body is validated first, then stored in one transaction. Every error answer is a
`contract.errors.ErrorBody` (monitor/api/http.py). One `VersionCache` (fitted calculators per
model version) per app: the analysis loop fills it, `GET /reports/{model}` reuses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from contract.records import LabelsBatch, RecordsBatch
from contract.registration import Registration, digest_bound
from monitor import metrics
from monitor.analysis.artifact import ArtifactRefusedError, vet
from monitor.analysis.cycle import VersionCache
from monitor.analysis.report import render_report
from monitor.analysis.track_record import track_record
from monitor.api.auth import Guard, Role
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
    NOT_REGISTERED,
    PARAMETER_ERRORS,
    REPORTS_BUSY,
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
from monitor.loops.background import (
    BackgroundLoops,
    analysis_pass,
    reconcile_pass,
    retention_pass,
    waking,
)
from monitor.loops.worker import AnalysisWorker
from monitor.settings import MonitorSettings, log_effective
from monitor.store import open_store
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
    workers: dict[str, AnalysisWorker | None] = {}  # "worker": where analysis and reports run
    reports_running = threading.BoundedSemaphore(settings.report_concurrency)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_effective(settings)
        owned = "store" not in holder
        if owned:
            holder["store"] = open_store(settings)
        st = holder["store"]
        cache = caches["cache"] = VersionCache(st, settings.chunk_size)
        # The analysis cycle and the reports run in a worker process (monitor/loops/worker.py)
        # so a cycle never holds this process's interpreter while it serves ingest.
        worker = AnalysisWorker(settings, metrics.METRICS) if settings.analysis_worker else None
        workers["worker"] = worker
        fits = worker if worker is not None else cache
        metrics.count_calculator_fits(lambda: fits.fits)
        loops = BackgroundLoops()
        if background:
            loops.start(
                "analysis",
                lambda: waking(
                    worker.cycle if worker is not None else analysis_pass(st, settings, cache),
                    loops.waker("reconcile"),
                ),
                settings.analysis_interval_seconds,
            )
            loops.start(
                "retention",
                lambda: retention_pass(st, settings),
                settings.retention_interval_seconds,
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
            if worker is not None:
                worker.close()
            workers.clear()
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
    publish_body_schemas(app, [RecordsBatch, LabelsBatch, Registration])

    def the_store() -> Store:
        st = holder.get("store")
        if st is None:
            raise ApiError(503, "the store is not open yet")
        return st

    # Roles and their tokens (monitor/api/auth.py): each dependency reads only the
    # Authorization header, so it runs before a handler reads the body.
    guard = Guard(settings)
    as_predictor = [Depends(guard.require("predictor"))]
    as_labels = [Depends(guard.require("labels"))]
    as_operator = [Depends(guard.require("operator"))]
    # Without a reader token reads are open, and the OpenAPI document says so (no security).
    as_reader = [Depends(guard.require("reader", "operator"))] if guard.configured("reader") else []
    registered: dict[str, set[tuple[str, str]]] = {}  # "pairs": registered (model, version)

    def check_registered(batch: RecordsBatch) -> None:
        """425 (retry later) unless every record names a registered version of a registered
        model: no forged version is stored and no metric series is made for one."""
        pairs = registered.get("pairs", set())
        if all((r.model, r.version) in pairs for r in batch.records):
            return
        pairs = registered["pairs"] = the_store().registered_pairs()
        models = {m for m, _ in pairs}
        for i, r in enumerate(batch.records):
            if (r.model, r.version) not in pairs:
                metrics.records_rejected("unregistered", len(batch.records))
                field = "version" if r.model in models else "model"
                raise ApiError(
                    425,
                    f"{r.model}:{r.version} is not registered (yet): a predictor registers"
                    " its version before its records are stored; retry later",
                    f"records[{i}].{field}",
                    headers={"Retry-After": "5"},
                )

    def store_records(batch: RecordsBatch) -> RecordsAccepted:
        n = len(batch.records)
        if n > settings.max_records_per_request:
            metrics.records_rejected("too_many", n)
            raise ApiError(
                413, f"{n} records, at most {settings.max_records_per_request} allowed", "records"
            )
        check_registered(batch)
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
        responses={**BODY_ERRORS, **AUTH_ERRORS, **NOT_REGISTERED},
        openapi_extra=json_body(RecordsBatch),
        dependencies=as_predictor,
    )
    async def post_records(request: Request) -> RecordsAccepted:
        """Store inference records of registered versions (predictor token); a
        `prediction_id` seen before is ignored (retries).

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
        responses={**BODY_ERRORS, **AUTH_ERRORS},
        openapi_extra=json_body(LabelsBatch),
        dependencies=as_labels,
    )
    async def post_labels(request: Request) -> LabelsAccepted:
        """Store ground truth by prediction id (labels token): before or after its record; a
        repeat overwrites."""
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
        openapi_extra=json_body(Registration),
    )
    async def post_model(
        request: Request,
        response: Response,
        role: Role | None = Depends(guard.require("predictor", "operator")),
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
        return await run_in_threadpool(register, reg, raw, response)

    def register(reg: Registration, raw: bytes, response: Response) -> RegistrationResult:
        st = the_store()
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

    @app.get(
        "/v1/models",
        response_model=list[VersionSummary],
        responses=AUTH_ERRORS,
        dependencies=as_reader,
    )
    def list_models() -> list[VersionSummary]:
        return [VersionSummary(**vars(v)) for v in the_store().versions()]

    @app.get(
        "/v1/models/{model}/versions/{version}",
        responses={**NOT_FOUND, **PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=as_reader,
    )
    def get_version(model: str, version: str) -> dict[str, Any]:
        """The registration as sent, without its artifact and reference rows."""
        try:
            return the_store().registration(model, version, with_reference=False)
        except NotFound:
            raise ApiError(404, f"{model}:{version} is not registered") from None

    @app.get(
        "/v1/models/{model}/chunks",
        responses={**PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=as_reader,
    )
    def get_chunks(model: str, version: str | None = None) -> list[dict[str, Any]]:
        """ChunkEvidence dicts (monitor/evidence.py) in arrival order."""
        return the_store().chunk_dicts(model, version)

    @app.get(
        "/v1/models/{model}/versions/{version}/track-record",
        responses={**PARAMETER_ERRORS, **AUTH_ERRORS},
        dependencies=as_reader,
    )
    def get_track_record(model: str, version: str) -> dict[str, Any]:
        """How wrong this version's label-free estimates have been: per metric, MAE, bias and
        interval coverage over its last labelled chunks (monitor/analysis/track_record.py)."""
        chunks = the_store().chunks(model, version)
        return {m: vars(t) for m, t in track_record(chunks).items()}

    @app.get("/v1/audit", responses={**PARAMETER_ERRORS, **AUTH_ERRORS}, dependencies=as_reader)
    def get_audit(
        model: str | None = None,
        kind: str | None = None,
        limit: int | None = Query(default=None, ge=1, le=100_000),
    ) -> list[dict[str, Any]]:
        """Append-only audit records, oldest first (the newest `limit`)."""
        return the_store().audit(model, kind, limit)

    @app.get("/v1/decisions", responses={**PARAMETER_ERRORS, **AUTH_ERRORS}, dependencies=as_reader)
    def get_decisions(model: str | None = None) -> list[dict[str, Any]]:
        """Audit records of the operator's decisions (those that name a trigger)."""
        return [
            e for e in the_store().audit(model) if "trigger" in e or e.get("kind") == "decision"
        ]

    @app.post(
        "/v1/models/{model}/versions/{version}/clear-rejection",
        response_model=ClearRejectionResult,
        responses={**NOT_FOUND, **AUTH_ERRORS, **PARAMETER_ERRORS},
        dependencies=as_operator,
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
        dependencies=as_operator,
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
        responses=json_errors(NOT_FOUND, PARAMETER_ERRORS, AUTH_ERRORS, REPORTS_BUSY),
        dependencies=as_reader,
    )
    def get_report(model: str) -> HTMLResponse:
        """The HTML report of every version of `model`, with the analysis loop's calculators
        (built in the analysis worker and kept until the model's analysis changes); at most
        `MONITOR_REPORT_CONCURRENCY` at once, more are a 503 with Retry-After."""
        st = the_store()
        if model not in st.models():
            raise ApiError(404, f"model {model!r} is unknown")
        cache = caches.get("cache")
        if cache is None:  # like the store: opened by the lifespan, before anything is served
            raise ApiError(503, "the analysis cache is not ready yet")
        if not reports_running.acquire(blocking=False):
            raise ApiError(
                503,
                f"{settings.report_concurrency} reports are being built; retry later",
                headers={"Retry-After": "5"},
            )
        try:
            worker = workers.get("worker")
            if worker is not None:
                return HTMLResponse(worker.report(model))
            return HTMLResponse(render_report(st, model, cache=cache))
        finally:
            reports_running.release()

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
