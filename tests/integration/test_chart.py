"""The Helm chart, checked with the real tools operators and CI use.

`helm lint --strict` and `helm template` (real helm binary), `kubernetes-validate --strict`
against Kubernetes 1.30 and 1.35 schemas, the ModelMonitor object against the CRD's own
OpenAPI schema (jsonschema), `checkov` on the rendered release, and the contract details an
operator relies on (env names, annotations, Pod Security "restricted", selectors that never
overlap). Tools are looked up on PATH with the repo's .tools/bin first; a missing tool is a
failure, not a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor.decision.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "modelguard"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
NAMESPACE = "modelguard-test"
RELEASE = "rel"
KUBE_VERSIONS = ("1.30.0", "1.35.0")  # both ship with kubernetes-validate
PROMETHEUS_OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
Doc = dict[str, Any]


def tool(name: str) -> str:
    """Absolute path of a CLI tool, the repo's .tools/bin first; fails when it is missing."""
    path = os.pathsep.join([str(ROOT / ".tools" / "bin"), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if found is None:
        pytest.fail(f"{name} not found on PATH or in .tools/bin: run scripts/install-tools.sh")
    return found


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def template(*args: str, kube_version: str = "1.35.0") -> list[Doc]:
    out = run(
        tool("helm"),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
        *args,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str, component: str) -> Doc:
    found = [
        d
        for d in by_kind(docs, kind)
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    assert len(found) == 1, f"expected one {kind} for {component}, got {len(found)}"
    return found[0]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def crd_schema() -> Doc:
    crd = yaml.safe_load((CHART / "crds" / "modelmonitor.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def defaults() -> list[Doc]:
    return template()


@pytest.fixture(scope="module")
def full() -> list[Doc]:
    return template(
        "-f", str(CHART / "ci" / "full-values.yaml"), "--api-versions", "monitoring.coreos.com/v1"
    )


@pytest.fixture(scope="module")
def postgres() -> list[Doc]:
    """Two monitor replicas on PostgreSQL (ci/postgres-values.yaml)."""
    return template("-f", str(CHART / "ci" / "postgres-values.yaml"))


def test_ci_has_defaults_and_everything_on() -> None:
    assert {p.name for p in CI_VALUES} >= {
        "default-values.yaml",
        "full-values.yaml",
        "postgres-values.yaml",
    }


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "chart")
def test_helm_lint_strict(values: Path | None) -> None:
    args = ["-f", str(values)] if values else []
    proc = run(tool("helm"), "lint", "--strict", str(CHART), *args)
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_rendered_objects_validate_strictly(values: Path, kube_version: str) -> None:
    """Built-in kinds against the Kubernetes schemas, ModelMonitor against our CRD."""
    docs = template(
        "-f",
        str(values),
        "--api-versions",
        "monitoring.coreos.com/v1",
        kube_version=kube_version,
    )
    custom = 0
    for doc in docs:
        if doc["kind"] == "ModelMonitor":
            jsonschema.validate(doc, crd_schema())
            custom += 1
        elif doc["kind"] in PROMETHEUS_OPERATOR_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        else:
            kubernetes_validate.validate(doc, kube_version, strict=True)
    assert custom == 1


def test_validators_reject_broken_objects(defaults: list[Doc]) -> None:
    """The validation above can fail: a wrong field or enum value is caught."""
    deployment = json.loads(json.dumps(one(defaults, "Deployment", "predictor")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.35.0", strict=True)
    monitor = json.loads(json.dumps(by_kind(defaults, "ModelMonitor")[0]))
    monitor["spec"]["mode"] = "sometimes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, crd_schema())


def test_model_monitor_candidates_from_values(defaults: list[Doc], tmp_path: Path) -> None:
    """spec.candidates / candidatePolicy come from values, valid against the CRD; without
    candidates the ModelMonitor carries none (only a commented example)."""
    (plain,) = by_kind(defaults, "ModelMonitor")
    assert "candidates" not in plain["spec"] and "candidatePolicy" not in plain["spec"]
    docs = template(
        "--set",
        "modelMonitor.candidates={good-4a1b2c3d,retrain-2}",
        "--set-string",
        "modelMonitor.candidatePolicy.margin=0.02",
        "--set",
        "modelMonitor.candidatePolicy.minRows=2000",
    )
    (mm,) = by_kind(docs, "ModelMonitor")
    assert mm["spec"]["candidates"] == ["good-4a1b2c3d", "retrain-2"]
    assert mm["spec"]["candidatePolicy"] == {"margin": "0.02", "minRows": 2000}
    jsonschema.validate(mm, crd_schema())
    for i, bad in enumerate(
        (
            {"candidates": ["Bad_Name"]},
            {"candidates": [f"v{i}" for i in range(9)]},
            {"candidatePolicy": {"margin": 0.02}},  # a float, not a decimal string
        )
    ):
        values = tmp_path / f"bad-{i}.yaml"
        values.write_text(yaml.safe_dump({"modelMonitor": bad}))
        proc = run(tool("helm"), "template", RELEASE, str(CHART), "-f", str(values), check=False)
        assert proc.returncode != 0, f"{bad} was accepted"


def test_model_monitor_drift_settings_from_values(defaults: list[Doc], tmp_path: Path) -> None:
    """spec.drift comes from values, valid against the CRD and parsed by the monitor alike;
    the values schema refuses what the CRD would (a float threshold, an unknown method)."""
    (plain,) = by_kind(defaults, "ModelMonitor")
    assert "drift" not in plain["spec"]
    drift = {
        "features": {
            "season": {"ignore": True},
            "temp": {"method": "jensen_shannon", "threshold": "0.2"},
        }
    }
    values = tmp_path / "drift.yaml"
    values.write_text(yaml.safe_dump({"modelMonitor": {"drift": drift}}))
    (mm,) = by_kind(template("-f", str(values)), "ModelMonitor")
    assert mm["spec"]["drift"] == drift
    jsonschema.validate(mm, crd_schema())
    assert parse_policy(mm["spec"]).drift.ignored == frozenset({"season"})
    for i, bad in enumerate(
        (
            {"features": {"temp": {"method": "jensen_shannon", "threshold": 0.2}}},
            {"features": {"temp": {"method": "psi"}}},
            {"features": {"temp": {}}},
        )
    ):
        values = tmp_path / f"bad-drift-{i}.yaml"
        values.write_text(yaml.safe_dump({"modelMonitor": {"drift": bad}}))
        proc = run(tool("helm"), "template", RELEASE, str(CHART), "-f", str(values), check=False)
        assert proc.returncode != 0, f"{bad} was accepted"


def test_values_schema_rejects_unknown_keys_and_latest() -> None:
    helm = tool("helm")
    for bad in ("predictor.replicas=3", "monitor.image.tag=latest", "modelMonitor.mode=always"):
        proc = run(helm, "template", RELEASE, str(CHART), "--set", bad, check=False)
        assert proc.returncode != 0, f"--set {bad} was accepted"
        assert "values don't meet the specifications of the schema" in proc.stderr


def test_schema_forbids_additional_properties_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            closed = node.get("additionalProperties") is False
            if node.get("type") == "object" and "properties" in node and not closed:
                yield where
            for key, child in node.items():
                yield from walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                yield from walk(child, f"{where}/{i}")

    assert list(walk(schema, "")) == []


def test_every_value_is_commented() -> None:
    """Each key in values.yaml, or a block it belongs to, has a comment right above it."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    # (indent, commented) of the enclosing keys
    ancestors: list[tuple[int, bool]] = []
    undocumented = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        commented = lines[i - 1].strip().startswith("#") if i else False
        is_leaf = not stripped.endswith(":")
        if is_leaf and not (commented or any(c for _, c in ancestors)):
            undocumented.append(stripped)
        ancestors.append((indent, commented))
    assert undocumented == []


def test_pod_security_restricted_everywhere(
    full: list[Doc], defaults: list[Doc], postgres: list[Doc]
) -> None:
    for docs in (defaults, full, postgres):
        pods = [d["spec"]["template"]["spec"] for d in by_kind(docs, "Deployment")]
        pods += [d["spec"] for d in by_kind(docs, "Pod")]
        assert len(pods) == 3  # predictor, monitor, helm test
        for pod in pods:
            sc = pod["securityContext"]
            assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int)
            assert sc["runAsUser"] > 0 and sc["seccompProfile"]["type"] == "RuntimeDefault"
            for c in pod["containers"]:
                csc = c["securityContext"]
                assert csc["allowPrivilegeEscalation"] is False
                assert csc["capabilities"]["drop"] == ["ALL"]
                assert "add" not in csc["capabilities"]
                assert csc["readOnlyRootFilesystem"] is True
                assert csc["seccompProfile"]["type"] == "RuntimeDefault"
                assert not c["image"].endswith(":latest") and ":" in c["image"]
                assert c["resources"]["limits"] and c["resources"]["requests"]
                mounts = {m["mountPath"] for m in c["volumeMounts"]}
                assert "/tmp" in mounts  # writes go to emptyDirs


def test_predictor_deployment_contract(defaults: list[Doc]) -> None:
    deploy = one(defaults, "Deployment", "predictor")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["predictor"]
    version = values["model"]["version"]
    pod = deploy["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["modelguard.dev/model-version"] == version
    assert annotations["modelguard.dev/model-name"] == values["model"]["name"]
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert deploy["spec"]["revisionHistoryLimit"] >= 10
    assert deploy["spec"]["replicas"] == values["replicaCount"]
    (container,) = spec["containers"]
    env = env_of(container)
    assert env["PREDICTOR_MODEL_TAG"]["value"] == f"{values['model']['name']}:{version}"
    assert env["PREDICTOR_EXPECTED_VERSION"]["value"] == version
    assert env["BENTOML_DO_NOT_TRACK"]["value"] == "true"
    monitor_svc = one(defaults, "Service", "monitor")
    assert env["PREDICTOR_MONITOR_URL"]["value"] == (
        f"http://{monitor_svc['metadata']['name']}.{NAMESPACE}.svc:8080"
    )
    assert env["PREDICTOR_MONITOR_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    volumes = {v["name"]: v for v in spec["volumes"]}
    spool_mount = next(m for m in container["volumeMounts"] if m["name"] == "spool")
    assert env["PREDICTOR_SPOOL_DIR"]["value"] == spool_mount["mountPath"]
    assert "emptyDir" in volumes["spool"] and "emptyDir" in volumes["tmp"]
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "startupProbe" in container
    pdb = one(defaults, "PodDisruptionBudget", "predictor")
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": deploy["spec"]["selector"],
    }


def test_autoscaling_leaves_replicas_out(full: list[Doc], defaults: list[Doc]) -> None:
    assert "replicas" not in one(full, "Deployment", "predictor")["spec"]
    hpa = one(full, "HorizontalPodAutoscaler", "predictor")
    assert (
        hpa["spec"]["scaleTargetRef"]["name"]
        == one(full, "Deployment", "predictor")["metadata"]["name"]
    )
    assert by_kind(defaults, "HorizontalPodAutoscaler") == []


def test_monitor_deployment_contract(defaults: list[Doc]) -> None:
    deploy = one(defaults, "Deployment", "monitor")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    spec = deploy["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = env_of(container)
    assert env["NML_DISABLE_USAGE_LOGGING"]["value"] == "1"
    assert env["BENTOML_DO_NOT_TRACK"]["value"] == "true"
    db_dir = str(Path(env["MONITOR_DB_PATH"]["value"]).parent)
    data_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == db_dir)
    volume = next(v for v in spec["volumes"] if v["name"] == data_mount["name"])
    pvc = one(defaults, "PersistentVolumeClaim", "monitor")
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert container["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert (
        spec["serviceAccountName"] == one(defaults, "ServiceAccount", "monitor")["metadata"]["name"]
    )
    svc = one(defaults, "Service", "monitor")
    assert svc["spec"]["ports"][0]["name"] == "http" and svc["spec"]["ports"][0]["port"] == 8080


def lease_rules(role: Doc) -> list[Doc]:
    return [r for r in role["rules"] if "coordination.k8s.io" in r["apiGroups"]]


def test_monitor_on_sqlite_is_one_pod_without_leader_election(defaults: list[Doc]) -> None:
    deploy = one(defaults, "Deployment", "monitor")
    env = env_of(deploy["spec"]["template"]["spec"]["containers"][0])
    assert "MONITOR_DATABASE_URL" not in env and "MONITOR_LEADER_ELECTION" not in env
    assert "topologySpreadConstraints" not in deploy["spec"]["template"]["spec"]
    assert [
        d for d in by_kind(defaults, "PodDisruptionBudget") if "monitor" in d["metadata"]["name"]
    ] == []
    (role,) = by_kind(defaults, "Role")
    assert lease_rules(role) == []


def test_monitor_on_postgres_contract(postgres: list[Doc]) -> None:
    """Several replicas: PostgreSQL from the user's Secret, a Lease, RollingUpdate, a PDB,
    no PVC."""
    values = yaml.safe_load((CHART / "ci" / "postgres-values.yaml").read_text())["monitor"]
    deploy = one(postgres, "Deployment", "monitor")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)
    assert env["MONITOR_DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "modelguard-database", "key": "url"}
    }
    assert "value" not in env["MONITOR_DATABASE_URL"]  # never in clear
    assert "MONITOR_DB_PATH" not in env
    assert env["MONITOR_LEADER_ELECTION"]["value"] == "true"
    assert env["MONITOR_LEASE_NAME"]["value"] == values["leaderElection"]["leaseName"]
    assert env["MONITOR_LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace"
    )
    assert env["MONITOR_LEASE_DURATION_SECONDS"]["value"] == "15"
    assert env["MONITOR_LEASE_RENEW_SECONDS"]["value"] == "5"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "CKV_K8S_35" in deploy["metadata"]["annotations"]["checkov.io/skip3"]
    assert "MONITOR_DATABASE_URL" in deploy["metadata"]["annotations"]["checkov.io/skip3"]
    # no PVC: the data volume holds only reports
    assert by_kind(postgres, "PersistentVolumeClaim") == []
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["data"] and "persistentVolumeClaim" not in volumes["data"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    pdb = one(postgres, "PodDisruptionBudget", "monitor")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": deploy["spec"]["selector"]}
    # egress to PostgreSQL, only where networkPolicy.database.to says
    egress = one(postgres, "NetworkPolicy", "monitor")["spec"]["egress"]
    (database,) = [rule for rule in egress if {"port": 5432, "protocol": "TCP"} in rule["ports"]]
    assert database["to"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgresql"}}}
    ]


def test_monitor_env_names_are_the_settings_fields(
    postgres: list[Doc], defaults: list[Doc]
) -> None:
    """Every MONITOR_* the chart sets is a variable MonitorSettings reads (a misspelt one is
    ignored)."""
    from monitor.core.settings import MonitorSettings

    read = set(MonitorSettings.environment())
    for docs in (defaults, postgres):
        env = env_of(
            one(docs, "Deployment", "monitor")["spec"]["template"]["spec"]["containers"][0]
        )
        assert [n for n in env if n.startswith("MONITOR_") and n not in read] == []


def test_monitor_role_adds_only_its_lease_on_postgres(postgres: list[Doc]) -> None:
    (role,) = by_kind(postgres, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE and by_kind(postgres, "ClusterRole") == []
    create, named = lease_rules(role)
    # create cannot be narrowed by resourceNames; everything else only on the one Lease
    assert create == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["create"],
    }
    assert named == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["modelguard-monitor-leader"],
        "verbs": ["get", "update", "patch"],
    }
    others = [r for r in role["rules"] if r not in (create, named)]
    (plain,) = by_kind(template(), "Role")
    assert others == plain["rules"]  # nothing else changes
    # the default Lease name is the monitor's name
    (default_lease,) = by_kind(
        template(
            "--set",
            "monitor.database.existingSecret=pg",
            "--show-only",
            "templates/monitor-rbac.yaml",
        ),
        "Role",
    )
    assert lease_rules(default_lease)[1]["resourceNames"] == [f"{RELEASE}-modelguard-monitor"]


def test_several_replicas_need_postgres() -> None:
    """The schema refuses monitor.replicas > 1 on SQLite and says what to set; so does the
    template when schema validation is skipped."""
    helm = tool("helm")
    proc = run(helm, "template", RELEASE, str(CHART), "--set", "monitor.replicas=2", check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert "/monitor/replicas" in proc.stderr
    assert "monitor.database.existingSecret" in proc.stderr
    proc = run(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--set",
        "monitor.replicas=2",
        "--skip-schema-validation",
        check=False,
    )
    assert proc.returncode != 0 and "monitor.database.existingSecret" in proc.stderr
    # one replica on PostgreSQL is fine (RollingUpdate, no PDB), two are too
    one_pod = template("--set", "monitor.database.existingSecret=pg")
    assert one(one_pod, "Deployment", "monitor")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert [
        d for d in by_kind(one_pod, "PodDisruptionBudget") if "monitor" in d["metadata"]["name"]
    ] == []
    assert template("--set", "monitor.replicas=3", "--set", "monitor.database.existingSecret=pg")
    proc = run(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--set",
        "monitor.database.existingSecret=pg",
        "--set",
        "monitor.leaderElection.renewSeconds=15",
        check=False,
    )
    assert proc.returncode != 0 and "renewSeconds must be below" in proc.stderr


ROLES = ("predictor", "labels", "operator", "reader")


def test_one_token_secret_per_role(defaults: list[Doc], full: list[Doc]) -> None:
    """Chart-made Secrets by default (the predictor's keeps the old registration Secret's
    name), the user's existingSecrets otherwise; the monitor reads all four, the predictor
    pod only its own."""
    monitor = f"{RELEASE}-modelguard-monitor"
    made = {
        "predictor": f"{monitor}-token",
        **{role: f"{monitor}-{role}-token" for role in ROLES[1:]},
    }
    secrets = {
        s["metadata"]["labels"]["modelguard.dev/token-role"]: s for s in by_kind(defaults, "Secret")
    }
    assert {role: s["metadata"]["name"] for role, s in secrets.items()} == made
    tokens = [s["data"]["token"] for s in secrets.values()]
    assert all(len(t) >= 40 for t in tokens) and len(set(tokens)) == len(ROLES)
    assert by_kind(full, "Secret") == []
    given = {
        "predictor": "modelguard-registration",
        "labels": "modelguard-labels",
        "operator": "modelguard-operator",
        "reader": "modelguard-reader",
    }
    for docs, names in ((defaults, made), (full, given)):

        def spec(component: str, docs: list[Doc] = docs) -> Doc:
            return one(docs, "Deployment", component)["spec"]["template"]["spec"]

        env = env_of(spec("monitor")["containers"][0])
        refs = {r: env[f"MONITOR_{r.upper()}_TOKEN"]["valueFrom"]["secretKeyRef"] for r in ROLES}
        assert {r: ref["name"] for r, ref in refs.items()} == names
        assert "MONITOR_REGISTRATION_TOKEN" not in env
        predictor = spec("predictor")
        env = env_of(predictor["containers"][0])
        assert (
            env["PREDICTOR_MONITOR_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
            == names["predictor"]
        )
        mentioned = json.dumps(predictor)
        assert not [n for r, n in names.items() if r != "predictor" and n in mentioned]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_never_overlap(full: list[Doc]) -> None:
    """Each selector picks the pods of exactly its own component."""
    pods = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["metadata"][
            "labels"
        ]
        for d in by_kind(full, "Deployment")
    }
    pods["test"] = by_kind(full, "Pod")[0]["metadata"]["labels"]
    selectors: list[tuple[str, dict[str, str]]] = []
    for d in by_kind(full, "Deployment") + by_kind(full, "PodDisruptionBudget"):
        selectors.append(
            (
                d["metadata"]["labels"]["app.kubernetes.io/component"],
                d["spec"]["selector"]["matchLabels"],
            )
        )
    for d in by_kind(full, "Service"):
        selectors.append(
            (d["metadata"]["labels"]["app.kubernetes.io/component"], d["spec"]["selector"])
        )
    for d in by_kind(full, "NetworkPolicy"):
        selectors.append(
            (
                d["metadata"]["labels"]["app.kubernetes.io/component"],
                d["spec"]["podSelector"]["matchLabels"],
            )
        )
    for component, selector in selectors:
        assert [c for c, labels in pods.items() if matches(selector, labels)] == [component]
    for d in full:
        labels = d["metadata"]["labels"]
        assert labels["helm.sh/chart"].startswith("modelguard-")
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= labels.keys()


def test_network_policies(defaults: list[Doc], full: list[Doc]) -> None:
    predictor = one(defaults, "NetworkPolicy", "predictor")["spec"]
    monitor = one(defaults, "NetworkPolicy", "monitor")["spec"]
    for spec in (predictor, monitor):
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        dns = spec["egress"][0]
        assert {p["port"] for p in dns["ports"]} == {53}
        assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # monitor: by default only this release's predictor pods and Prometheus, a rule each;
    # per role the peers given in values, never an empty `from` (that would admit anyone)
    (predictors,), (prometheus,) = (rule["from"] for rule in monitor["ingress"])
    assert predictors["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "predictor"
    assert "namespaceSelector" in prometheus
    full_ingress = one(full, "NetworkPolicy", "monitor")["spec"]["ingress"]
    assert len(full_ingress) == 5  # predictors, Prometheus, label feeders, operators, extra
    assert all(
        rule["from"] and rule["ports"] == [{"port": "http", "protocol": "TCP"}]
        for rule in full_ingress
    )
    assert {"modelguard.dev/label-feeder": "true"} in [
        p.get("podSelector", {}).get("matchLabels") for rule in full_ingress for p in rule["from"]
    ]
    # predictor egress: DNS and the monitor, nothing else
    (to_monitor,) = predictor["egress"][1]["to"]
    assert to_monitor["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "monitor"
    assert len(predictor["egress"]) == 2
    # monitor egress to the API server: ports only by default, CIDRs when given
    api = monitor["egress"][1]
    assert {p["port"] for p in api["ports"]} == {443, 6443} and "to" not in api
    full_api = one(full, "NetworkPolicy", "monitor")["spec"]["egress"][1]
    assert [t["ipBlock"]["cidr"] for t in full_api["to"]] == ["10.96.0.1/32", "172.18.0.2/32"]
    assert by_kind(template("--set", "networkPolicy.enabled=false"), "NetworkPolicy") == []


def test_monitor_role_is_least_privilege(defaults: list[Doc]) -> None:
    (role,) = by_kind(defaults, "Role")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert ("apps", "deployments", "patch") in granted
    assert ("modelguard.dev", "modelmonitors/status", "patch") in granted
    assert not any(
        v in {"*", "delete", "create", "update"} and r != "events" for _, r, v in granted
    )
    assert by_kind(defaults, "ClusterRole") == []
    (binding,) = by_kind(defaults, "RoleBinding")
    assert (
        binding["subjects"][0]["name"]
        == one(defaults, "ServiceAccount", "monitor")["metadata"]["name"]
    )


def test_prometheus_objects_need_values_and_capabilities(full: list[Doc]) -> None:
    without_api = template("-f", str(CHART / "ci" / "full-values.yaml"))
    assert {d["kind"] for d in without_api}.isdisjoint(PROMETHEUS_OPERATOR_KINDS)
    assert len(by_kind(full, "ServiceMonitor")) == 2
    (rule,) = by_kind(full, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for sm in by_kind(full, "ServiceMonitor"):
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert sm["spec"]["endpoints"][0]["port"] == "http"
    plain = yaml.safe_load((CHART / "rules" / "modelguard-alerts.yaml").read_text())
    assert rule["spec"]["groups"] == plain["groups"]  # the one rules file, verbatim
    custom = template(
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "prometheusRule.runbookBaseUrl=https://runbooks.example.com/mg/",
        "--api-versions",
        "monitoring.coreos.com/v1",
    )
    urls = [
        r["annotations"]["runbook_url"]
        for g in by_kind(custom, "PrometheusRule")[0]["spec"]["groups"]
        for r in g["rules"]
    ]
    assert urls and all(u.startswith("https://runbooks.example.com/mg/Modelguard") for u in urls)


def test_dashboard_configmap(full: list[Doc]) -> None:
    (cm,) = by_kind(full, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "modelguard.json").read_text())
    assert json.loads(cm["data"]["modelguard.json"]) == shipped


def test_helm_test_pod_checks_readiness_and_predicts(defaults: list[Doc]) -> None:
    (pod,) = by_kind(defaults, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    script = container["args"][0]
    assert "/readyz" in script and "/predict" in script
    request = json.loads(env_of(container)["PREDICT_REQUEST"]["value"])
    assert len(request["records"]) == 1
    svc = one(defaults, "Service", "predictor")["metadata"]["name"]
    assert env_of(container)["PREDICTOR_URL"]["value"] == f"http://{svc}.{NAMESPACE}.svc:3000"


def test_notes_render_next_steps() -> None:
    # helm template does not print NOTES; install --dry-run=client does, without a cluster.
    proc = run(tool("helm"), "install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client")
    assert "helm test rel -n modelguard-test" in proc.stdout
    assert "kubectl -n modelguard-test get modelmonitors" in proc.stdout


def test_crd_in_chart_is_the_shared_crd() -> None:
    chart_crd = (CHART / "crds" / "modelmonitor.yaml").read_bytes()
    assert chart_crd == (ROOT / "k8s" / "crds" / "modelmonitor.yaml").read_bytes()


def checkov_on_chart(values: Path) -> dict[str, Any]:
    """checkov's helm framework on the chart (it runs `helm template` itself).

    HELM_NAMESPACE makes that render land in a real namespace: rendered into `default`,
    CKV_K8S_21 ("do not use the default namespace") would flag every object.
    """
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HELM_NAMESPACE": NAMESPACE,
    }
    proc = subprocess.run(
        [
            tool("checkov"),
            "-d",
            str(CHART),
            "--framework",
            "helm",
            "--var-file",
            str(values),
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    parsed = json.loads(proc.stdout)
    (report,) = parsed if isinstance(parsed, list) else [parsed]
    assert isinstance(report, dict)
    return report


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_checkov_zero_failed_and_every_skip_has_a_reason(values: Path) -> None:
    report = checkov_on_chart(values)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["failed"] == 0
    assert report["summary"]["passed"] > 200
    skipped = report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, (
            f"{check['check_id']} on {check['resource']} skipped without reason"
        )


PD_APIS = ("--api-versions", "argoproj.io/v1alpha1", "--api-versions", "flagger.app/v1beta1")
PD_ON = (
    "--set",
    "progressiveDelivery.argoRollouts.enabled=true",
    "--set",
    "progressiveDelivery.flagger.enabled=true",
)
PD_KINDS = {"AnalysisTemplate", "MetricTemplate"}
# The exact queries for model rain_forecast in namespace modelguard-test (chart defaults).
SELECTOR = f'namespace="{NAMESPACE}",model="rain_forecast"'
ARGO_QUERY = (
    f'min((modelguard_estimated_gap_cumulative{{{SELECTOR},version=~"{{{{args.canary-version}}}}"}}'
    f" > -Inf) and on (model, version) (modelguard_estimated_gap_rows{{{SELECTOR}}} >= 1000)"
    " and on (model, version)"
    f" (increase(modelguard_records_ingested_total{{{SELECTOR}}}[900s]) > 0))"
)
FLAGGER_QUERY = ARGO_QUERY.replace(',version=~"{{args.canary-version}}"', "").replace(
    f'namespace="{NAMESPACE}"', 'namespace="{{ namespace }}"'
)


@pytest.fixture(scope="module")
def progressive() -> list[Doc]:
    return template(*PD_ON, *PD_APIS)


def argo_query(docs: list[Doc]) -> str:
    (analysis,) = by_kind(docs, "AnalysisTemplate")
    query: str = analysis["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    return query


def flagger_query(docs: list[Doc]) -> str:
    (metric,) = by_kind(docs, "MetricTemplate")
    query: str = metric["spec"]["query"]
    return query


def test_progressive_delivery_templates(progressive: list[Doc]) -> None:
    (analysis,) = by_kind(progressive, "AnalysisTemplate")
    assert analysis["apiVersion"] == "argoproj.io/v1alpha1"
    assert analysis["metadata"]["name"] == f"{RELEASE}-modelguard-estimated-gap"
    assert analysis["metadata"]["namespace"] == NAMESPACE
    assert analysis["spec"]["args"] == [{"name": "canary-version", "value": ".+"}]
    (metric,) = analysis["spec"]["metrics"]
    assert metric["successCondition"] == "len(result) > 0 && result[0] >= -0.03"
    assert metric["failureCondition"] == "len(result) > 0 && result[0] < -0.03"
    assert (metric["interval"], metric["failureLimit"], metric["inconclusiveLimit"]) == ("5m", 1, 6)
    assert "count" not in metric  # background analysis by default
    prometheus = metric["provider"]["prometheus"]
    assert prometheus["address"] == "http://prometheus-operated.monitoring.svc:9090"
    (flagger,) = by_kind(progressive, "MetricTemplate")
    assert flagger["apiVersion"] == "flagger.app/v1beta1"
    assert flagger["spec"]["provider"] == {"type": "prometheus", "address": prometheus["address"]}
    # one query (the _helpers.tpl helper), placeholders of each tool and nothing else
    assert argo_query(progressive) == ARGO_QUERY
    assert flagger_query(progressive) == FLAGGER_QUERY
    assert argo_query(progressive).count("{{") == 1 and flagger_query(progressive).count("{{") == 3
    # values reach the query and the conditions
    custom = template(
        *PD_ON,
        *PD_APIS,
        "--set-string",
        "progressiveDelivery.maxGap=-0.05",
        "--set",
        "progressiveDelivery.minRows=2000",
        "--set",
        "progressiveDelivery.recentSeconds=600",
        "--set",
        "progressiveDelivery.namespaceLabel=",
        "--set",
        "progressiveDelivery.argoRollouts.count=4",
    )
    (metric,) = by_kind(custom, "AnalysisTemplate")[0]["spec"]["metrics"]
    assert metric["failureCondition"] == "len(result) > 0 && result[0] < -0.05"
    assert metric["count"] == 4
    for query in (argo_query(custom), flagger_query(custom)):
        assert ">= 2000)" in query and "[600s]" in query and "namespace=" not in query


def test_progressive_delivery_needs_values_and_apis() -> None:
    assert {d["kind"] for d in template(*PD_ON)}.isdisjoint(PD_KINDS)  # no API served
    assert {d["kind"] for d in template(*PD_APIS)}.isdisjoint(PD_KINDS)  # not enabled
    only_argo = template(*PD_ON, "--api-versions", "argoproj.io/v1alpha1")
    assert {d["kind"] for d in only_argo} & PD_KINDS == {"AnalysisTemplate"}
    only_flagger = template(*PD_ON, "--api-versions", "flagger.app/v1beta1")
    assert {d["kind"] for d in only_flagger} & PD_KINDS == {"MetricTemplate"}
    proc = run(
        tool("helm"), "install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client", *PD_ON
    )
    assert "does not serve argoproj.io/v1alpha1" in proc.stdout
    assert "does not serve flagger.app/v1beta1" in proc.stdout
    for bad in ("progressiveDelivery.maxGap=-3", "progressiveDelivery.minRows=0"):
        proc = run(tool("helm"), "template", RELEASE, str(CHART), "--set", bad, check=False)
        assert proc.returncode != 0, f"--set {bad} was accepted"


@pytest.mark.parametrize("on", [False, True], ids=["off", "on"])
def test_progressive_delivery_lint_strict(on: bool) -> None:
    args = PD_ON if on else ()
    proc = run(tool("helm"), "lint", "--strict", str(CHART), *args)
    assert "0 chart(s) failed" in proc.stdout


def test_progressive_delivery_checkov(progressive: list[Doc], tmp_path: Path) -> None:
    """checkov's kubernetes framework on the rendered templates (its helm run cannot pass
    --api-versions, so there they are not rendered)."""
    rendered = tmp_path / "progressive.yaml"
    rendered.write_text(yaml.safe_dump_all([d for d in progressive if d["kind"] in PD_KINDS]))
    proc = run(
        tool("checkov"),
        "-f",
        str(rendered),
        "--framework",
        "kubernetes",
        "--skip-download",
        "-o",
        "json",
        check=False,
    )
    parsed = json.loads(proc.stdout)
    (report,) = parsed if isinstance(parsed, list) else [parsed]
    # checkov has no checks for these two kinds: a bare summary, nothing failed or unparsed
    summary = report.get("summary", report)
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0, report


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def test_progressive_delivery_queries_in_promtool(progressive: list[Doc], tmp_path: Path) -> None:
    """The rendered queries, placeholders filled in as Argo Rollouts and Flagger fill them,
    evaluated by Prometheus' own engine (promtool test rules) on series as the monitor exports
    them: empty below minRows, NaN and stale or other versions/namespaces/models left out,
    the worst qualifying version otherwise."""
    ns = f'namespace="{NAMESPACE}",model="rain_forecast"'
    gap, rows, records = (
        "modelguard_estimated_gap_cumulative",
        "modelguard_estimated_gap_rows",
        "modelguard_records_ingested_total",
    )
    nan = " ".join(["NaN"] * 31)
    series = [
        # v2: 500 rows behind the gap for 10 minutes, then 1500; two monitor replicas
        *(
            s
            for pod in ("a", "b")
            for s in (
                _series(gap, f'{ns},version="v2",pod="{pod}"', "-0.05x30"),
                _series(rows, f'{ns},version="v2",pod="{pod}"', "500x10 1500x20"),
                _series(records, f'{ns},version="v2",pod="{pod}"', "0+50x30"),
            )
        ),
        # v3: a NaN gap (would pass a thresholdRange)
        _series(gap, f'{ns},version="v3"', nan),
        _series(rows, f'{ns},version="v3"', "5000x30"),
        _series(records, f'{ns},version="v3"', "0+50x30"),
        # v4: no records for the whole window (not serving)
        _series(gap, f'{ns},version="v4"', "-0.4x30"),
        _series(rows, f'{ns},version="v4"', "5000x30"),
        _series(records, f'{ns},version="v4"', "100x30"),
        # v6: better than the known-good
        _series(gap, f'{ns},version="v6"', "0.02x30"),
        _series(rows, f'{ns},version="v6"', "2000x30"),
        _series(records, f'{ns},version="v6"', "0+50x30"),
        # the known-good: records, no gap series
        _series(records, f'{ns},version="good"', "0+500x30"),
        # another namespace, another model
        _series(gap, 'namespace="other",model="rain_forecast",version="v7"', "-0.5x30"),
        _series(rows, 'namespace="other",model="rain_forecast",version="v7"', "5000x30"),
        _series(records, 'namespace="other",model="rain_forecast",version="v7"', "0+50x30"),
        _series(gap, f'namespace="{NAMESPACE}",model="flights",version="v2"', "-0.5x30"),
        _series(rows, f'namespace="{NAMESPACE}",model="flights",version="v2"', "5000x30"),
        _series(records, f'namespace="{NAMESPACE}",model="flights",version="v2"', "0+50x30"),
    ]
    argo, flagger = argo_query(progressive), flagger_query(progressive)

    def arg(version: str) -> str:
        return argo.replace("{{args.canary-version}}", version)

    flagger_filled = flagger.replace("{{ namespace }}", NAMESPACE)
    assert flagger_filled == arg(".+").replace(',version=~".+"', "")
    cases = [
        (arg("v2"), "5m", None),  # 500 rows behind v2's gap: below minRows
        (arg(".+"), "5m", 0.02),  # only v6 qualifies (v3 NaN, v4 stale, v2 too few rows)
        (arg(".+"), "20m", -0.05),  # the worst of v2 and v6
        (arg("v6"), "20m", 0.02),
        (arg("v3"), "20m", None),  # NaN never comes out
        (arg("v4"), "20m", None),
        (arg("good"), "20m", None),
        (flagger_filled, "5m", 0.02),
        (flagger_filled, "20m", -0.05),
    ]
    tests = [
        {
            "expr": expr,
            "eval_time": at,
            "exp_samples": [] if value is None else [{"labels": "{}", "value": value}],
        }
        for expr, at, value in cases
    ]
    suite = tmp_path / "queries.test.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "rule_files": [],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            }
        )
    )
    proc = run(tool("promtool"), "test", "rules", str(suite), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def test_body_limits_stay_below_the_memory_limits(defaults: list[Doc]) -> None:
    """Parsing a body takes up to ~17x its size (a 200 MB body drove a predictor worker to
    3.4 GiB before bodies were bounded): the body limits the chart sets leave room for that
    below each container's memory limit."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, factor, base in (("predictor", 17, 256 * 2**20), ("monitor", 16, 768 * 2**20)):
        limit = _bytes(values[name]["resources"]["limits"]["memory"])
        body = values[name]["maxBodyBytes"]
        assert factor * body + base <= limit, (name, body, limit)
        env = {
            e["name"]: e.get("value")
            for d in defaults
            if d["kind"] == "Deployment"
            for c in d["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", [])
        }
        assert env[f"{name.upper()}_MAX_BODY_BYTES"] == str(body)
