"""The ModelMonitor CRD refuses bad specs with a clear message.

kmock does not enforce a CRD's openAPIV3Schema (it stores whatever it is sent), so the
specs are validated here against the schema itself with `jsonschema` - what the API server
does on `kubectl apply`. The CRD document is validated against Kubernetes' own schema with
kubernetes-validate, and its defaults must equal the policy's measured defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor.decision.policy import Policy, parse_policy

CRD_PATH = Path(__file__).resolve().parents[2] / "k8s" / "crds" / "modelmonitor.yaml"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return loaded


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    [version] = crd["spec"]["versions"]
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return found


def manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelguard.dev/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": "rain", "namespace": "ml"},
        "spec": {
            "model": "rain_forecast",
            "targetRef": {"kind": "Deployment", "name": "p"},
            **spec,
        },
    }


def openapi_nullable(node: Any) -> Any:
    """OpenAPI's `nullable: true` as JSON schema (`type: [t, "null"]`), as the API server
    reads it."""
    if isinstance(node, list):
        return [openapi_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


def errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(
        openapi_nullable(schema), format_checker=jsonschema.FormatChecker()
    )
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(obj)
    ]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it (objects present or defaulted)."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    for key, sub in (schema.get("properties") or {}).items():
        if key not in value and "default" in sub:
            value[key] = sub["default"]
        if key not in value and sub.get("type") == "object":
            value[key] = {}
        if key in value:
            value[key] = apply_defaults(sub, value[key])
    return value


def test_crd_is_a_valid_kubernetes_object(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.30", strict=True)
    assert crd["metadata"]["name"] == "modelmonitors.modelguard.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == ["mm"]
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    """Every node has a type; defaults validate against their own node."""

    def walk(node: dict[str, Any], path: str) -> None:
        assert "type" in node, f"{path} has no type"
        if "default" in node:
            assert not errors(node, node["default"]), f"{path} default is invalid"
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{key}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(schema, "")


def test_printer_columns_point_at_schema_fields(
    crd: dict[str, Any], schema: dict[str, Any]
) -> None:
    [version] = crd["spec"]["versions"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[:7] == ["Model", "Mode", "Version", "Known-Good", "Ready", "Degraded", "Est-AUC"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"].lstrip(".").split("[")[0].split(".")
        node = schema
        for part in path:
            if part == "metadata":
                break
            node = node["properties"][part]


def test_good_specs_pass_and_defaults_equal_the_policy(schema: dict[str, Any]) -> None:
    full = manifest(
        mode="auto",
        chunkSize=500,
        minRowsPerChunk=300,
        probationChunks=6,
        cooldown="1h30m",
        rollbackOnWorldDrift=False,
        releaseGate={"metric": "roc_auc", "maxShortfall": "0.02"},
        rollbackRules={
            "parity": {"maxViolationRatio": "0.01", "tolerance": "0.0001", "consecutiveChunks": 1},
            "rankCorrelation": {"sigmas": "3", "consecutiveChunks": 3},
            "estimatedGap": {
                "metric": "roc_auc",
                "min": "-0.03",
                "consecutiveChunks": 2,
                "sameLearnerOnly": True,
            },
            "realizedGap": {
                "metric": "roc_auc",
                "min": "-0.05",
                "consecutiveChunks": 2,
                "minLabelledRows": 200,
            },
        },
        thresholds={
            "estimated": {"roc_auc": {"lower": "0.70"}},
            "realized": {"roc_auc": {"lower": "0.70"}},
        },
    )
    assert errors(schema, full) == []
    minimal = manifest()
    assert errors(schema, minimal) == []
    defaulted = apply_defaults(schema, minimal)
    assert defaulted["spec"]["mode"] == "dryRun"
    assert parse_policy(defaulted["spec"]) == parse_policy(manifest()["spec"])
    assert parse_policy(defaulted["spec"]) == Policy(model="rain_forecast", target_name="p")


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"mode": "yolo"}, "spec.mode", "is not one of"),
        ({"chunkSize": 10}, "spec.chunkSize", "less than the minimum"),
        ({"chunkSize": "500"}, "spec.chunkSize", "is not of type 'integer'"),
        ({"cooldown": "30 minutes"}, "spec.cooldown", "does not match"),
        (
            {"chunkPeriod": "30d", "chunkAnchor": "2024-01-01"},
            "spec.chunkAnchor",
            "does not match",
        ),
        (
            {"releaseGate": {"maxShortfall": 0.02}},
            "spec.releaseGate.maxShortfall",
            "is not of type 'string'",
        ),
        (
            {"rollbackRules": {"estimatedGap": {"min": "-3"}}},
            "spec.rollbackRules.estimatedGap.min",
            "does not match",
        ),
        (
            {"rollbackRules": {"parity": {"consecutiveChunks": 0}}},
            "spec.rollbackRules.parity.consecutiveChunks",
            "less than the minimum",
        ),
        (
            {"targetRef": {"kind": "StatefulSet", "name": "p"}},
            "spec.targetRef.kind",
            "is not one of",
        ),
        ({"targetRef": {"kind": "Deployment"}}, "spec.targetRef", "'name' is a required"),
        ({"model": "Rain Forecast"}, "spec.model", "does not match"),
        ({"rollbackOnWorldDrift": "yes"}, "spec.rollbackOnWorldDrift", "is not of type"),
        (
            {"thresholds": {"estimated": {"roc_auc": {"lower": "1.5"}}}},
            "spec.thresholds.estimated.roc_auc.lower",
            "does not match",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_field(
    schema: dict[str, Any], spec: dict[str, Any], field: str, says: str
) -> None:
    found = errors(schema, manifest(**spec))
    assert found, "the schema accepted a bad spec"
    assert any(e.startswith(f"{field}:") and says in e for e in found), found


CANDIDATE_POLICY = {
    "minChunks": 3,
    "minRows": 1000,
    "margin": "0.03",
    "realizedMargin": "0.05",
    "level": "0.9",
    "backfillChunks": 4,
    "rejectWorse": True,
}


def test_candidates_are_accepted_and_defaulted(schema: dict[str, Any]) -> None:
    spec = manifest(candidates=["good-4a1b2c3d", "retrain-2.1"], candidatePolicy=CANDIDATE_POLICY)
    assert errors(schema, spec) == []
    assert errors(schema, manifest(candidates=[f"v{i}" for i in range(8)])) == []
    defaulted = apply_defaults(schema, manifest(candidates=["v2"]))
    assert defaulted["spec"]["candidatePolicy"] == CANDIDATE_POLICY
    policy = parse_policy(defaulted["spec"])
    assert policy.candidates == ("v2",)
    assert policy.candidate_policy == parse_policy(manifest()["spec"]).candidate_policy


def test_candidate_status_validates(crd: dict[str, Any], schema: dict[str, Any]) -> None:
    obj = manifest(candidates=["v2", "v3"])
    obj["status"] = {
        "candidates": [
            {
                "version": "v2",
                "verdict": "Worse",
                "reason": "GapBelowMargin",
                "message": "estimated gap -0.061 [-0.080, -0.042] below -0.03",
                "baselineVersion": "good-362025e520",
                "chunks": 4,
                "rows": 2000,
                "labelledRows": 0,
                "estimatedGap": "-0.061",
                "estimatedGapLower": "-0.080",
                "estimatedGapUpper": "-0.042",
                "chunksNeeded": None,
                "updated": "2026-11-02T10:00:00Z",
            },
            {"version": "v3", "verdict": "Equivalent", "realizedGap": "0.004", "chunksNeeded": 3},
        ],
        "candidateSummary": "v2=Worse v3=Equivalent",
    }
    assert errors(schema, obj) == []
    obj["status"]["candidates"][0]["verdict"] = "Great"
    assert any("is not one of" in e for e in errors(schema, obj))
    [version] = crd["spec"]["versions"]
    (column,) = [c for c in version["additionalPrinterColumns"] if c["name"] == "Candidates"]
    assert column["jsonPath"] == ".status.candidateSummary" and column.get("priority", 0) == 0
    candidates = schema["properties"]["spec"]["properties"]["candidates"]
    assert candidates["x-kubernetes-list-type"] == "set"  # the API server refuses duplicates


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"candidatePolicy": {"margin": 0.03}}, "spec.candidatePolicy.margin", "is not of type"),
        ({"candidatePolicy": {"margin": "3%"}}, "spec.candidatePolicy.margin", "does not match"),
        ({"candidatePolicy": {"level": "0.3"}}, "spec.candidatePolicy.level", "does not match"),
        (
            {"candidatePolicy": {"minChunks": 1}},
            "spec.candidatePolicy.minChunks",
            "less than the minimum",
        ),
        (
            {"candidatePolicy": {"minRows": 0}},
            "spec.candidatePolicy.minRows",
            "less than the minimum",
        ),
        (
            {"candidatePolicy": {"rejectWorse": "yes"}},
            "spec.candidatePolicy.rejectWorse",
            "is not of type",
        ),
        ({"candidates": ["Good_V2"]}, "spec.candidates.0", "does not match"),
        ({"candidates": ["v2 "]}, "spec.candidates.0", "does not match"),
        ({"candidates": [f"v{i}" for i in range(9)]}, "spec.candidates", "is too long"),
        ({"candidates": "v2"}, "spec.candidates", "is not of type 'array'"),
    ],
)
def test_bad_candidates_are_refused_naming_the_field(
    schema: dict[str, Any], spec: dict[str, Any], field: str, says: str
) -> None:
    found = errors(schema, manifest(**spec))
    assert any(e.startswith(f"{field}:") and says in e for e in found), found


def test_spec_is_required(schema: dict[str, Any]) -> None:
    obj = manifest()
    del obj["spec"]["model"]
    assert any("'model' is a required property" in e for e in errors(schema, obj))


DRIFT = {
    "features": {
        "season": {"ignore": True},
        "temp": {"method": "jensen_shannon", "threshold": "0.2"},
        "wind": {"method": "kolmogorov_smirnov"},
    }
}


def test_drift_settings_are_accepted_and_parse_alike(
    crd: dict[str, Any], schema: dict[str, Any]
) -> None:
    obj = manifest(drift=DRIFT)
    assert errors(schema, obj) == []
    policy = parse_policy(apply_defaults(schema, obj)["spec"])
    assert policy.drift.ignored == frozenset({"season"})
    assert policy.drift.features["temp"].threshold == 0.2
    obj["status"] = {"drift": {"features": policy.drift.to_json()}}
    assert errors(schema, obj) == []
    kubernetes_validate.validate(crd, "1.30", strict=True)


@pytest.mark.parametrize(
    ("drift", "field", "says"),
    [
        ({"features": {"temp": {"method": "psi"}}}, "spec.drift.features.temp.method", "one of"),
        (
            {"features": {"temp": {"method": "jensen_shannon", "threshold": 0.2}}},
            "spec.drift.features.temp.threshold",
            "is not of type 'string'",
        ),
        (
            {"features": {"temp": {"method": "jensen_shannon", "threshold": "1.5"}}},
            "spec.drift.features.temp.threshold",
            "does not match",
        ),
        ({"features": {"season": {"ignore": "yes"}}}, "spec.drift.features.season.ignore", "type"),
        ({"features": {"season": {}}}, "spec.drift.features.season", "should be non-empty"),
        ({"features": ["season"]}, "spec.drift.features", "is not of type 'object'"),
        (
            {"features": {f"f{i}": {"ignore": True} for i in range(501)}},
            "spec.drift.features",
            "too many properties",
        ),
    ],
)
def test_bad_drift_settings_are_refused_naming_the_field(
    schema: dict[str, Any], drift: dict[str, Any], field: str, says: str
) -> None:
    found = errors(schema, manifest(drift=drift))
    assert any(e.startswith(f"{field}:") and says in e for e in found), found


@pytest.mark.parametrize(
    "setting",
    [
        {"ignore": True, "method": "chi2"},
        {"threshold": "0.2"},
        {"method": "chi2", "threshold": "0.1"},
    ],
)
def test_what_the_schema_cannot_say_the_monitor_refuses(
    schema: dict[str, Any], setting: dict[str, Any]
) -> None:
    """Rules between fields are the monitor's second line (InvalidSpec naming the field)."""
    obj = manifest(drift={"features": {"season": setting}})
    assert errors(schema, obj) == []
    with pytest.raises(ValueError, match=r"^spec\.drift\.features\.season\."):
        parse_policy(obj["spec"])
