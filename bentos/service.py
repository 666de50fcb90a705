"""The BentoML predictor: validate records, score them, hand them to the shipper.

The model's own metadata drives everything: the feature schema (a JSON string in the
model's metadata) becomes the strict pydantic request model at import time, so `/docs.json`
states every field's type, range, nullability and categories. Nothing here is weather-specific.

Hot path, kept lean on purpose (see docs/predictor.md for the measurements):
* the request body is validated once, by pydantic-core straight from the JSON bytes (JSON
  lines: line by line), in `bentos.requests`;
* a bad request arrives as a `Rejected` and is answered as is (400/413/415 naming
  `records[i].field` and the problem), not through BentoML's generic handler (which also logs
  a traceback per bad request); the body is `contract.errors.ErrorBody`, as the monitor's,
  and `/docs.json` says so;
* the float32 matrix is built directly from the validated records (no DataFrame); it is
  identical to `ModelSchema.to_matrix`, which a unit test checks;
* the response JSON is written by hand, not through a pydantic output model;
* inference records are only appended to the shipper's buffer (no I/O, never raises);
* `?explain=k` (opt-in) runs `score_explained` instead, which adds TreeSHAP contributions;
  without it `score` runs exactly as before.

Two request headers (read by `bentos.requests`) steer inference logging: `X-Modelguard-Log:
off` keeps the request's records out of the monitor (test traffic; counted in
`modelguard_predictor_records_not_logged_total`), and `X-Modelguard-Event-Time` (ISO-8601)
stamps its records with the time of the events they score (a backfill), which the monitor's
chunks by period and report use; without it a record's event time is its serving time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Sequence
from typing import Any, cast

import bentoml
import xgboost as xgb
from starlette.responses import Response

from bentos.bentoml_patches import patch_timeout_middleware
from bentos.fastpath import FastPath, Route, in_thread
from bentos.openapi import PredictorService
from bentos.registration_client import RegistrationClient
from bentos.requests import Prediction, Rejected, request_model
from bentos.reuseport import patch_reuseport
from bentos.scoring import explainer, matrix_builder, new_prediction_ids
from bentos.settings import PredictorSettings
from bentos.shipping import Shipper, ShippingConfig, ShippingStats
from contract import metadata as md_keys
from contract.errors import ErrorBody
from contract.schema import ModelSchema

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

logger = logging.getLogger("modelguard.predictor")
logging.getLogger("modelguard").setLevel(logging.INFO)  # BentoML's handlers print it

SETTINGS = PredictorSettings()
TIMEOUT_FIX = patch_timeout_middleware()
REUSE_PORT = SETTINGS.reuse_port and patch_reuseport()  # acts in `bentoml serve`'s arbiter
MODEL_REF = bentoml.models.BentoModel(SETTINGS.model_tag)  # also packs the model at build
_STORED = bentoml.models.get(SETTINGS.model_tag)
MODEL_NAME, MODEL_VERSION = _STORED.tag.name, str(_STORED.tag.version)
SCHEMA = ModelSchema.model_validate_json(str(_STORED.info.metadata[md_keys.SCHEMA]))
SERVICE_NAME = "modelguard_predictor"
INLINE_SCORING_ROWS = 256  # bigger requests are scored off the event loop
INLINE_EXPLAINED_ROWS = 16  # TreeSHAP costs ~50 us per record: explained ones leave it sooner


# ---------------------------------------------------------------- metrics (contract section 2)
SHIPPED = bentoml.metrics.Counter(
    name="modelguard_predictor_records_shipped",
    documentation="Inference records acknowledged by the monitor",
)
DROPPED = bentoml.metrics.Counter(
    name="modelguard_predictor_records_dropped",
    documentation="Inference records not delivered, by reason (sampled_out is not loss)",
    labelnames=["reason"],
)
NOT_LOGGED = bentoml.metrics.Counter(
    name="modelguard_predictor_records_not_logged",
    documentation="Records scored but kept out of the monitor on request (X-Modelguard-Log: off)",
)
SPOOL_BYTES = bentoml.metrics.Gauge(
    name="modelguard_predictor_spool_bytes",
    documentation="Bytes of undelivered record batches in the on-disk spool",
    multiprocess_mode="livesum",
)
REGISTRATION = bentoml.metrics.Gauge(
    name="modelguard_predictor_registration_success",
    documentation="1 once the served version is registered with the monitor",
    multiprocess_mode="max",
)
MODEL_INFO = bentoml.metrics.Gauge(
    name="modelguard_predictor_model_info",
    documentation="The served model and version (always 1)",
    labelnames=["model", "version"],
    multiprocess_mode="max",
)


class PrometheusShippingStats(ShippingStats):
    """ShippingStats mirrored into the predictor's /metrics."""

    def on_shipped(self, n: int) -> None:
        super().on_shipped(n)
        SHIPPED.inc(n)

    def on_dropped(self, reason: str, n: int) -> None:
        super().on_dropped(reason, n)
        DROPPED.labels(reason=reason).inc(n)

    def on_spool_bytes(self, size: int) -> None:
        super().on_spool_bytes(size)
        SPOOL_BYTES.set(size)


PredictRequest = request_model(
    "PredictRequest",
    SCHEMA,
    SETTINGS.max_batch,
    f"1 to {SETTINGS.max_batch} records; every feature required, null only where nullable",
    max_body_bytes=SETTINGS.max_body_bytes,
)
BatchPredictRequest = request_model(
    "BatchPredictRequest",
    SCHEMA,
    SETTINGS.batch_max_records,
    f"1 to {SETTINGS.batch_max_records} records (JSON, or JSON lines with "
    "Content-Type application/x-ndjson, one record per line)",
    max_body_bytes=SETTINGS.max_body_bytes,
    ndjson=True,
)


# ---------------------------------------------------------------- the service
@bentoml.service(
    name=SERVICE_NAME,
    service_class=PredictorService,
    workers=SETTINGS.workers,
    traffic={"timeout": 120},
    metrics={"enabled": True, "namespace": "bentoml_service"},
    # Per-request CPU measured in docs/performance.md: the access log and the OpenTelemetry
    # middleware (it runs even at sample rate 0) cost ~35% of a single-record request.
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": ["/predict", "/predict_batch", "/livez", "/readyz", "/metrics"]},
)
class Predictor:
    """Any binary classifier from the BentoML store; see docs/contracts.md section 2."""

    model = MODEL_REF

    def __init__(self) -> None:
        SETTINGS.log_effective()
        self.booster = xgb.Booster()
        self.booster.load_model(self.model.path_of(md_keys.BOOSTER_FILE))
        self.booster.set_param({"nthread": SETTINGS.predict_threads})
        self.threshold = SCHEMA.threshold
        self.to_matrix = matrix_builder(SCHEMA)
        self.explain = explainer(self.booster, SCHEMA.feature_names, SETTINGS.predict_threads)
        self.ready = SETTINGS.expected_version in (None, "", MODEL_VERSION)
        if not self.ready:
            logger.error(
                "loaded %s:%s but the pod declares version %s: /readyz stays 503",
                MODEL_NAME,
                MODEL_VERSION,
                SETTINGS.expected_version,
            )
        MODEL_INFO.labels(model=MODEL_NAME, version=MODEL_VERSION).set(1)
        REGISTRATION.set(0)
        self.shipper: Shipper | None = None
        self.registration: RegistrationClient | None = None
        logger.info("serving %s:%s (threshold %.2f)", MODEL_NAME, MODEL_VERSION, self.threshold)
        # Everything long-lived is loaded now: take the ~200k start-up objects out of the
        # collector's scans, so a full collection no longer stalls requests for ~100 ms.
        gc.collect()
        gc.freeze()
        _LIVE[:] = [self]

    @bentoml.on_startup
    def start_background(self) -> None:
        base = SETTINGS.monitor_base
        if base is None:
            logger.info("PREDICTOR_MONITOR_URL unset: no record shipping, no registration")
            return
        self.shipper = Shipper(
            ShippingConfig(
                records_url=f"{base}/v1/records",
                model=MODEL_NAME,
                version=MODEL_VERSION,
                spool_dir=SETTINGS.spool_dir,
                spool_max_bytes=SETTINGS.spool_max_bytes // SETTINGS.workers,
                sample_rate=SETTINGS.sample_rate,
                batch_records=SETTINGS.ship_batch_records,
                flush_seconds=SETTINGS.ship_flush_seconds,
                queue_max_records=SETTINGS.ship_queue_max_records,
                timeout_seconds=SETTINGS.ship_timeout_seconds,
                token=SETTINGS.monitor_token,
            ),
            stats=PrometheusShippingStats(),
        )
        self.shipper.start()
        self.registration = RegistrationClient(
            base,
            SETTINGS.monitor_token,
            _registration_payload,
            on_result=lambda ok: REGISTRATION.set(1 if ok else 0),
        )
        self.registration.start()

    @bentoml.on_shutdown
    def flush(self) -> None:
        if self.registration is not None:
            self.registration.stop()
        if self.shipper is not None:
            self.shipper.close(SETTINGS.shutdown_flush_seconds)

    def __is_ready__(self) -> bool:
        return self.ready

    def score(self, records: Sequence[Any]) -> Response:
        x = self.to_matrix(records)
        probs = self.booster.inplace_predict(x).tolist()
        ids, classes = self._served(records, probs)
        version = MODEL_VERSION
        body = ",".join(
            f'{{"prediction_id":"{i}","probability":{p!r},"predicted_class":{c},'
            f'"model_version":"{version}"}}'
            for i, p, c in zip(ids, probs, classes, strict=True)
        )
        return Response(f"[{body}]", media_type="application/json")

    def _served(self, records: Sequence[Any], probs: list[float]) -> tuple[list[str], list[int]]:
        """Ids and classes for scored records, which are handed to the shipper (or counted
        as not logged when the request opted out)."""
        ids = new_prediction_ids(len(probs))
        threshold = self.threshold
        classes = [1 if p >= threshold else 0 for p in probs]
        if not getattr(records, "log", True):
            NOT_LOGGED.inc(len(ids))
        elif self.shipper is not None:
            self.shipper.submit(records, ids, probs, classes, getattr(records, "event_time", None))
        return ids, classes

    def score_explained(self, records: Sequence[Any]) -> Response:
        """`score` plus, per prediction, its top-k contributions (`?explain=k`); off the hot
        path on purpose: `score` is what a request without `explain` runs, unchanged."""
        x = self.to_matrix(records)
        probs = self.booster.inplace_predict(x).tolist()
        explained = self.explain(x, getattr(records, "explain", 0))
        ids, classes = self._served(records, probs)
        version = MODEL_VERSION
        body = ",".join(
            f'{{"prediction_id":"{i}","probability":{p!r},"predicted_class":{c},'
            f'"model_version":"{version}","explanation":{e}}}'
            for i, p, c, e in zip(ids, probs, classes, explained, strict=True)
        )
        return Response(f"[{body}]", media_type="application/json")

    async def answer(self, records: Any) -> Response:
        """What `/predict` answers (the routed API and the fast path both call it)."""
        if isinstance(records, Rejected):
            return records.response()
        try:
            if records.explain:
                if len(records) <= INLINE_EXPLAINED_ROWS:
                    return self.score_explained(records)
                return await asyncio.to_thread(self.score_explained, records)
            if len(records) <= INLINE_SCORING_ROWS:
                return self.score(records)
            return await asyncio.to_thread(self.score, records)
        except Exception:
            return _scoring_failed()

    def answer_batch(self, records: Any) -> Response:
        """What `/predict_batch` answers, in a worker thread (routed API and fast path)."""
        if isinstance(records, Rejected):
            return records.response()
        try:
            if records.explain:
                return self.score_explained(records)
            return self.score(records)
        except Exception:
            return _scoring_failed()

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, records: Any) -> list[Prediction]:
        """Score up to PREDICTOR_MAX_BATCH records; one prediction per record, same order.

        `?explain=k` (or `true`: 5) adds each record's top-k contributions in log-odds."""
        return _as_api_result(await self.answer(records))

    @bentoml.api(route="/predict_batch", input_spec=BatchPredictRequest)
    def predict_batch(self, records: Any) -> list[Prediction]:
        """The batch mode: large lists or JSON-lines files, scored in BentoML's thread pool."""
        return _as_api_result(self.answer_batch(records))


_LIVE: list[Any] = []  # the worker's Predictor instance, once BentoML has created it

if SETTINGS.fast_path:
    cast("bentoml.Service[Any]", Predictor).add_asgi_middleware(
        FastPath,
        routes={
            "/predict": Route(PredictRequest, lambda owner, recs: owner.answer(recs)),
            "/predict_batch": Route(
                BatchPredictRequest, lambda owner, recs: in_thread(owner.answer_batch, recs)
            ),
        },
        instance=lambda: _LIVE[0] if _LIVE else None,
        server_header=f"BentoML Service/{SERVICE_NAME}",
        failed=lambda: _scoring_failed(),
    )


def _scoring_failed() -> Response:
    """500 as an `ErrorBody` (BentoML's own handler would answer `{"error"}`); logs why."""
    logger.exception("scoring failed")
    return Rejected(500, ErrorBody.about("scoring failed (see the predictor's log)")).response()


def _as_api_result(response: Response) -> Any:
    """BentoML passes a Response through untouched; the annotation is what /docs.json shows."""
    return response


def _registration_payload() -> bytes:
    from bentos.packaging import registration_from_bento_model

    reg = registration_from_bento_model(bentoml.models.get(f"{MODEL_NAME}:{MODEL_VERSION}"))
    return reg.model_dump_json(by_alias=True).encode()
