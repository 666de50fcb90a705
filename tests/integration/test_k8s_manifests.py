"""The plain manifests in k8s/ stay what the chart installs.

k8s/generate.sh renders them from the chart with the real helm; this regenerates them into a
temp directory and demands byte equality, so a chart change without `k8s/generate.sh` fails.
The two hand-written files are pinned too: the chart's CRD copy is identical to
k8s/crds/modelmonitor.yaml, and the chart's Role grants exactly the rules of k8s/rbac.yaml to
the ServiceAccount the plain monitor Deployment runs as. Everything in k8s/ validates
strictly (Kubernetes 1.35 schemas; the ModelMonitor example against the CRD).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CHART = ROOT / "helm" / "modelguard"
GENERATED = (
    "monitor.yaml",
    "predictor-example.yaml",
    "modelmonitor-example.yaml",
    "networkpolicies.yaml",
    "monitoring.yaml",
    "progressive-delivery.yaml",
)
CUSTOM_API_VERSIONS = {"monitoring.coreos.com/v1", "argoproj.io/v1alpha1", "flagger.app/v1beta1"}
Doc = dict[str, Any]
Rule = tuple[str, str, str]


def load_all(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def granted(role: Doc) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture(scope="module")
def helm_on_path() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / ".tools" / "bin"), os.environ.get("PATH", "")])
    if shutil.which("helm", path=path) is None:
        pytest.fail("helm not found on PATH or in .tools/bin: run scripts/install-tools.sh")
    return {**os.environ, "PATH": path}


def test_generated_manifests_are_up_to_date(tmp_path: Path, helm_on_path: dict[str, str]) -> None:
    proc = subprocess.run(
        ["bash", str(K8S / "generate.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=helm_on_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for name in GENERATED:
        fresh = (tmp_path / name).read_text()
        assert fresh == (K8S / name).read_text(), f"k8s/{name} is stale: run k8s/generate.sh"


def test_crd_copies_are_identical() -> None:
    shared = (K8S / "crds" / "modelmonitor.yaml").read_bytes()
    assert (CHART / "crds" / "modelmonitor.yaml").read_bytes() == shared


def test_chart_role_equals_plain_rbac(helm_on_path: dict[str, str]) -> None:
    rendered = subprocess.run(
        [
            "helm",
            "template",
            "modelguard",
            str(CHART),
            "-n",
            "modelguard",
            "--show-only",
            "templates/monitor-rbac.yaml",
        ],
        capture_output=True,
        text=True,
        env=helm_on_path,
        check=True,
    ).stdout
    (chart_role,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Role"]
    plain = load_all(K8S / "rbac.yaml")
    (plain_role,) = [d for d in plain if d["kind"] in {"Role", "ClusterRole"}]
    assert granted(chart_role) == granted(plain_role)
    # the plain monitor runs as the ServiceAccount k8s/rbac.yaml binds
    (binding,) = [d for d in plain if d["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    (deployment,) = [d for d in load_all(K8S / "monitor.yaml") if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    subject = binding["subjects"][0]
    assert (subject["name"], subject["namespace"]) == (
        pod["serviceAccountName"],
        deployment["metadata"]["namespace"],
    )


def test_plain_manifests_validate() -> None:
    crd = yaml.safe_load((K8S / "crds" / "modelmonitor.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    kinds = set()
    for name in (*GENERATED, "rbac.yaml", "crds/modelmonitor.yaml"):
        for doc in load_all(K8S / name):
            kinds.add(doc["kind"])
            if doc["kind"] == "ModelMonitor":
                jsonschema.validate(doc, schema)
            elif doc["apiVersion"] not in CUSTOM_API_VERSIONS:
                kubernetes_validate.validate(doc, "1.35.0", strict=True)
    assert {"Deployment", "Service", "ModelMonitor", "NetworkPolicy", "Role"} <= kinds
    assert {"PrometheusRule", "ServiceMonitor", "ConfigMap"} <= kinds
    assert {"AnalysisTemplate", "MetricTemplate"} <= kinds


def test_plain_manifests_need_no_helm() -> None:
    """No Helm-only labels, hooks, or a chart-generated Secret in what kubectl users apply."""
    for name in GENERATED:
        text = (K8S / name).read_text()
        assert "helm.sh/chart" not in text and "helm.sh/hook" not in text
        assert "managed-by: Helm" not in text
        assert all(d["kind"] != "Secret" for d in load_all(K8S / name))
