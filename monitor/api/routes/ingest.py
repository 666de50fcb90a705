"""Ingest: `POST /v1/records` (predictor token) and `POST /v1/labels` (labels token).

A bad payload is refused before anything is written: the whole body is validated first, then
stored in one transaction. Records of an unregistered version are a 425 (retry later). Each
model the body names must be the caller's (`Guard.refuse_foreign`, per-model credentials): a
batch naming another model is refused whole, 403. A label names its model through its
record, so with per-model credentials configured a label is accepted only once its record is
stored (earlier: 425, retry later): otherwise a label sent ahead could land on another
model's record.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from contract.records import LabelsBatch, RecordsBatch
from monitor.api.auth import Caller
from monitor.api.context import AppContext
from monitor.api.http import ApiError, json_body, parse_body
from monitor.api.models import (
    AUTH_ERRORS,
    BODY_ERRORS,
    LABEL_AHEAD,
    NOT_REGISTERED,
    LabelsAccepted,
    RecordsAccepted,
)
from monitor.metrics import process as metrics


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    settings = ctx.settings
    guard = ctx.guard
    as_predictor = guard.require("predictor")
    as_labels = guard.require("labels")
    registered: dict[str, set[tuple[str, str]]] = {}  # "pairs": registered (model, version)

    def check_registered(batch: RecordsBatch) -> None:
        """425 (retry later) unless every record names a registered version of a registered
        model: no forged version is stored and no metric series is made for one."""
        pairs = registered.get("pairs", set())
        if all((r.model, r.version) in pairs for r in batch.records):
            return
        pairs = registered["pairs"] = ctx.store().registered_pairs()
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
        if n > settings.http.max_records_per_request:
            metrics.records_rejected("too_many", n)
            raise ApiError(
                413,
                f"{n} records, at most {settings.http.max_records_per_request} allowed",
                "records",
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
        result = ctx.store().append_records_detailed(rows)
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
    )
    async def post_records(
        request: Request, caller: Caller = Depends(as_predictor)
    ) -> RecordsAccepted:
        """Store inference records of registered versions (predictor token); a
        `prediction_id` seen before is ignored (retries).

        The body is parsed and validated in one pass by pydantic-core (no `json.loads`
        first): the hot path of ingest. Then stored in one transaction.
        """
        batch = parse_body(RecordsBatch, await request.body())
        guard.refuse_foreign(caller, [r.model for r in batch.records], "records[{i}].model")
        return await run_in_threadpool(store_records, batch)

    def check_label_models(caller: Caller, batch: LabelsBatch) -> None:
        """With per-model credentials configured: every label's record stored (else 425)
        and of a model the caller may write (else 403), before anything is written."""
        if caller.role == "operator" or not guard.model_tokens.models():
            return
        ids = [lab.prediction_id for lab in batch.labels]
        models = ctx.store().record_models(ids)
        for i, pid in enumerate(ids):
            if pid not in models:
                raise ApiError(
                    425,
                    f"no record of prediction {pid!r} is stored yet: with per-model credentials"
                    " a label is accepted once its record is (it names the label's model);"
                    " retry later, nothing was stored",
                    f"labels[{i}].prediction_id",
                    headers={"Retry-After": "5"},
                )
        guard.refuse_foreign(caller, [models[pid] for pid in ids], "labels[{i}].prediction_id")

    def store_labels(caller: Caller, batch: LabelsBatch) -> LabelsAccepted:
        n = len(batch.labels)
        if n > settings.http.max_records_per_request:
            raise ApiError(
                413,
                f"{n} labels, at most {settings.http.max_records_per_request} allowed",
                "labels",
            )
        check_label_models(caller, batch)
        result = ctx.store().append_labels_detailed([lab.model_dump() for lab in batch.labels])
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
        responses={**BODY_ERRORS, **AUTH_ERRORS, **LABEL_AHEAD},
        openapi_extra=json_body(LabelsBatch),
    )
    async def post_labels(request: Request, caller: Caller = Depends(as_labels)) -> LabelsAccepted:
        """Store ground truth by prediction id (labels token): before or after its record; a
        repeat overwrites."""
        batch = parse_body(LabelsBatch, await request.body())
        return await run_in_threadpool(store_labels, caller, batch)
