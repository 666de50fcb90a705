"""The Grafana dashboard: valid JSON that imports anywhere and shows what operators need.

Fixed uid (links and provisioning stay stable), a templated Prometheus datasource (no
hard-coded datasource uid), the panels the issue names, and queries that only use metrics
the monitor, the predictor and BentoML actually export (names from docs/contracts.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "helm" / "modelguard" / "dashboards" / "modelguard.json"
BENTOML_METRICS = {
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds_bucket",
    "bentoml_service_request_in_progress",
}


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p["type"] != "row"]


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:modelguard|bentoml)_[a-z_]+)\b", expr))


def contract_names() -> set[str]:
    text = (ROOT / "docs" / "contracts.md").read_text()
    names = set(re.findall(r"`(modelguard_[a-z_]+)", text))
    for line in text.splitlines():  # `modelguard_x_error` / `_threshold`, `_alert`
        bases = re.findall(r"`(modelguard_[a-z_]+)`", line)
        for suffix in re.findall(r"`(_[a-z_]+)`", line):
            names |= {b.rsplit("_", 1)[0] + suffix for b in bases}
    return names | {n + "_bucket" for n in names}


def test_fixed_uid_and_templated_datasource() -> None:
    dashboard = load()
    assert dashboard["uid"] == "modelguard-overview"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"


def test_panel_ids_unique_and_layout_sane() -> None:
    dashboard = load()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24


def test_required_panels_are_there() -> None:
    dashboard = load()
    used = set().union(*(metrics_in(e) for e in exprs(dashboard)))
    required = {
        # estimated vs realized, with bounds
        "modelguard_estimated_performance",
        "modelguard_estimated_performance_lower",
        "modelguard_estimated_performance_upper",
        "modelguard_realized_performance",
        # drift per feature, multivariate drift
        "modelguard_feature_drift",
        "modelguard_multivariate_drift_error",
        # rows in / dropped, label lag
        "modelguard_records_ingested_total",
        "modelguard_predictor_records_dropped_total",
        "modelguard_label_lag_seconds",
        # rollbacks and conditions
        "modelguard_rollbacks_total",
        "modelguard_condition",
    }
    assert required <= used
    performance = next(p for p in panels(dashboard) if p["title"].startswith("Estimated vs"))
    perf_metrics = set().union(*(metrics_in(t["expr"]) for t in performance["targets"]))
    assert {
        "modelguard_estimated_performance_lower",
        "modelguard_estimated_performance_upper",
        "modelguard_realized_performance",
    } <= perf_metrics


def test_queries_use_only_exported_metrics() -> None:
    known = contract_names() | BENTOML_METRICS
    for expr in exprs(load()):
        unknown = metrics_in(expr) - known
        assert not unknown, f"{expr!r} uses {unknown}"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")


def test_variables_used_by_queries_exist() -> None:
    dashboard = load()
    declared = {v["name"] for v in dashboard["templating"]["list"]}
    builtin = {"__rate_interval", "__range", "__interval"}
    for expr in exprs(dashboard):
        assert set(re.findall(r"\$(\w+)", expr)) <= declared | builtin
