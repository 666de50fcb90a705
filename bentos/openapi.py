"""The predictor's `/docs.json`: BentoML's document with the routes' errors as `ErrorBody`,
the `explain` query parameter and the `explanation` a prediction then carries."""

from __future__ import annotations

import json
from typing import Any

import bentoml
from pydantic import BaseModel, Field

from contract import errors

ERROR_RESPONSES = {
    400: errors.response("Malformed JSON, or records that do not match the model's schema"),
    413: errors.response("More records than the route takes, or a body over its size limit"),
    415: errors.response(
        "A body that is not application/json (or, for /predict_batch, JSON lines)"
    ),
    500: errors.response("Scoring failed (see the predictor's log)"),
}


class Contribution(BaseModel):
    feature: str
    value: float = Field(description="The feature's TreeSHAP contribution, in log-odds")


class Explanation(BaseModel):
    """Present only with `?explain`: `base_value + sum(contributions) + others` = the margin."""

    base_value: float = Field(description="The model's expected margin (log-odds), the bias")
    contributions: list[Contribution] = Field(
        description="The k largest contributions by absolute value, largest first"
    )
    others: float = Field(description="Sum of the other features' contributions (log-odds)")


def explain_parameter(n_features: int) -> dict[str, Any]:
    """The `explain` query parameter of both routes (parsed in bentos/requests.py)."""
    return {
        "name": "explain",
        "in": "query",
        "required": False,
        "description": (
            "Opt-in per-prediction explanation: k = how many contributions per record "
            f"(1 to {n_features}; `true` = 5). Off when absent or `false`. Each prediction "
            "then carries `explanation`: exact TreeSHAP contributions in log-odds, base value "
            "+ all contributions = the margin, logit(probability)."
        ),
        "schema": {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": n_features},
                {"type": "string", "enum": ["true", "false"]},
            ]
        },
    }


def explanation_schemas(ref_template: str = "#/components/schemas/{model}") -> dict[str, Any]:
    schema = Explanation.model_json_schema(ref_template=ref_template, mode="serialization")
    defs = schema.pop("$defs", {})
    return {**defs, "Explanation": schema}


# BentoML's generic error bodies, which its document lists for every route; not ours.
_BENTOML_ERROR_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError")


class PredictorService(bentoml.Service[Any]):
    """BentoML's service; its `/docs.json` gives the API routes' error answers as `ErrorBody`.

    BentoML documents each route with its own 400/404/500 bodies (`{"error", "detail"}`), but
    these routes answer 400, 413 and 500 with `contract.errors.ErrorBody` (as the monitor does):
    the document is BentoML's, with the error responses of the routes replaced, and the
    opt-in `?explain=k` parameter and `Prediction.explanation` added.
    """

    @property
    def openapi_spec(self) -> Any:
        spec = super().openapi_spec
        schemas = spec.components["schemas"]
        schemas.update(errors.openapi_schemas())
        schemas.update(explanation_schemas())
        prediction = schemas.get("Prediction")
        if prediction is not None and prediction.properties is not None:
            prediction.properties["explanation"] = {
                "$ref": "#/components/schemas/Explanation",
                "description": "Only with ?explain; absent otherwise",
            }
        for api in self.apis.values():
            operation = spec.paths[api.route].post
            operation["responses"] = {200: operation["responses"][200], **ERROR_RESPONSES}
            if "requestBody" in operation:  # a route without a body is a 400: required
                operation["requestBody"]["required"] = True
            schema = getattr(api.input_spec, "schema", None)  # bentos.requests' request model
            if schema is not None:
                operation["parameters"] = [explain_parameter(len(schema.feature_names))]
        paths = json.dumps(spec.asdict()["paths"])
        for name in _BENTOML_ERROR_SCHEMAS:
            if f'"#/components/schemas/{name}"' not in paths:
                schemas.pop(name, None)
        return spec
