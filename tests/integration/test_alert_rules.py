"""The alerting rules, checked and unit-tested by the real promtool.

One plain rules file (helm/modelguard/rules/modelguard-alerts.yaml) feeds both the chart's
PrometheusRule and these checks. Beyond promtool's own pass/fail, this asserts the
conventions operators rely on: `for:`, severity, templated description, a runbook per alert
with its four sections, metric names that exist in docs/contracts.md (or BentoML's and
kube-state-metrics'), and a firing and a silent promtool case for every alert.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm" / "modelguard" / "rules" / "modelguard-alerts.yaml"
RULE_TESTS = ROOT / "helm" / "modelguard" / "rules" / "tests" / "modelguard-alerts.test.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_BASE = "https://github.com/modelguard/modelguard/blob/main/docs/runbooks/"
EXTERNAL_METRICS = {
    # BentoML 1.4 HTTP metrics (namespace bentoml_service; _internal/server/http/instruments.py)
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds_bucket",
    "bentoml_service_request_in_progress",
    # kube-state-metrics and Prometheus itself
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
    "up",
}
REQUIRED_ALERTS = {
    "ModelguardEstimatedPerformanceLow",
    "ModelguardRealizedPerformanceLow",
    "ModelguardReleaseUnderperformsKnownGood",
    "ModelguardImportantFeatureDrift",
    "ModelguardMultivariateDrift",
    "ModelguardDataQuality",
    "ModelguardFeatureOutsideExpectedRange",
    "ModelguardInferenceLogsNotArriving",
    "ModelguardAnalysisFailing",
    "ModelguardRollbackPerformed",
    "ModelguardRetrainingRecommended",
    "ModelguardLabelsLagging",
    "ModelguardPredictorErrorRate",
    "ModelguardPredictorLatencyP99",
    "ModelguardPodsNotReady",
    "ModelguardMonitorDown",
}


def promtool() -> str:
    path = os.pathsep.join([str(ROOT / ".tools" / "bin"), os.environ.get("PATH", "")])
    found = shutil.which("promtool", path=path)
    if found is None:
        pytest.fail("promtool not found: apt-get install prometheus (scripts/install-tools.sh)")
    return found


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def contract_metrics() -> set[str]:
    """Metric names in docs/contracts.md, with `/ _suffix` shorthands expanded."""
    names: set[str] = set()
    for line in (ROOT / "docs" / "contracts.md").read_text().splitlines():
        tokens = re.findall(r"`(modelguard_[a-z_]+|_[a-z_]+`)", line)
        base = None
        for token in tokens:
            if token.startswith("modelguard_"):
                base = token.rstrip("`")
                names.add(base)
            elif base:  # `modelguard_x_error` / `_threshold`: replace the last word
                token = token.rstrip("`")
                names.add(base.rsplit("_", 1)[0] + token)
    histograms = {n + s for n in names for s in ("_bucket", "_sum", "_count")}
    return names | histograms


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    proc = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule with a broken threshold makes the same unit tests fail."""
    broken = RULES.read_text().replace("> 6 * 3600", "> 600 * 3600")
    rules_dir = tmp_path / "rules"
    (rules_dir / "tests").mkdir(parents=True)
    (rules_dir / RULES.name).write_text(broken)
    (rules_dir / "tests" / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    proc = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=rules_dir / "tests",
    )
    assert proc.returncode != 0
    assert "ModelguardLabelsLagging" in proc.stdout + proc.stderr


def test_required_alerts_exist() -> None:
    assert {a["alert"] for a in alerts()} >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_alert_conventions(rule: dict[str, Any]) -> None:
    assert "for" in rule
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert "$labels" in annotations["description"] or "$value" in annotations["description"]
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{rule['alert']}.md"


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_runbook_has_the_four_sections(rule: dict[str, Any]) -> None:
    runbook = RUNBOOKS / f"{rule['alert']}.md"
    text = runbook.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == ["Meaning", "Impact", "Diagnosis", "Mitigation"]
    for section in re.split(r"^## .+$", text, flags=re.MULTILINE)[1:]:
        assert len(section.strip()) > 40


def test_no_orphan_runbooks() -> None:
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == {a["alert"] for a in alerts()}


def test_rules_use_only_known_metrics() -> None:
    known = contract_metrics() | EXTERNAL_METRICS
    assert "modelguard_multivariate_drift_threshold" in known  # the shorthand expansion works
    functions = {"max", "sum", "rate", "increase", "time", "absent", "histogram_quantile", "count"}
    keywords = {"by", "on", "and", "or", "unless", "offset", "le", "group_left", "ignoring"}
    for rule in alerts():
        expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', "", rule["expr"])
        # label names inside by (...) / on (...) are not metrics
        expr = re.sub(r"\b(by|on)\s*\([^)]*\)", "", expr)
        names = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", expr)) - functions - keywords
        names = {n for n in names if not re.fullmatch(r"\d+[smhd]", n)}
        assert names <= known, f"{rule['alert']} uses unknown metrics {names - known}"


def test_every_alert_has_firing_and_silent_cases() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert firing == names
    assert silent == names
    # sampling is not loss: the dropped-records case also feeds sampled_out drops
    dropped = next(c for c in cases if c["name"].startswith("dropped records"))
    assert any('reason="sampled_out"' in s["series"] for s in dropped["input_series"])
