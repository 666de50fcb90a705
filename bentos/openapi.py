"""The predictor's `/docs.json`: BentoML's document with the routes' errors as `ErrorBody`."""

from __future__ import annotations

import json
from typing import Any

import bentoml

from contract import errors

ERROR_RESPONSES = {
    400: errors.response("Malformed JSON, or records that do not match the model's schema"),
    413: errors.response("More records than the route takes, or a body over its size limit"),
    500: errors.response("Scoring failed (see the predictor's log)"),
}
# BentoML's generic error bodies, which its document lists for every route; not ours.
_BENTOML_ERROR_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError")


class PredictorService(bentoml.Service[Any]):
    """BentoML's service; its `/docs.json` gives the API routes' error answers as `ErrorBody`.

    BentoML documents each route with its own 400/404/500 bodies (`{"error", "detail"}`), but
    these routes answer 400, 413 and 500 with `contract.errors.ErrorBody` (as the monitor does):
    the document is BentoML's, with the error responses of the routes replaced.
    """

    @property
    def openapi_spec(self) -> Any:
        spec = super().openapi_spec
        schemas = spec.components["schemas"]
        schemas.update(errors.openapi_schemas())
        for api in self.apis.values():
            operation = spec.paths[api.route].post
            operation["responses"] = {200: operation["responses"][200], **ERROR_RESPONSES}
        paths = json.dumps(spec.asdict()["paths"])
        for name in _BENTOML_ERROR_SCHEMAS:
            if f'"#/components/schemas/{name}"' not in paths:
                schemas.pop(name, None)
        return spec
