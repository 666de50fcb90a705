"""The chart's pods as the kubelet would run them, emulated here (tests/support/pod_emulator.py).

Every workload of the real `helm template` output -- the predictor and monitor Deployments'
pod templates and the `helm test` pod -- runs from its manifest: env (the rendered Secret's
token on both sides), volumeMounts (emptyDir as tmpfs of its sizeLimit, the PVC as a
directory), the security context (uid/gid/fsGroup, no capabilities, no_new_privs, a
read-only root), command/args or the image's entrypoint, the memory limit as a cgroup. The
images are laid out from their Dockerfiles: the predictor's is the one `bentoml build`
generates inside the real Bento (exported with its model, as `bentoml containerize` uses it),
the monitor's is docker/monitor.Dockerfile. The chart's own probes (path and port from the
manifest) gate each pod; the helm test pod makes its prediction through the predictor's
Service name; the predictor registers with the monitor and ships its records through the
monitor's Service; a replay runs both under their memory limits. Broken charts fail: a
removed emptyDir, a wrong probe path or port, an env var the code does not read, a memory
limit the process outgrows, and the image without its BENTOML_HOME directories (issue 16).

Needs root (mount namespaces, chroot, cgroups), as CI has; skipped with the reason otherwise.
What is and is not emulated: docs/operations.md, "What the pod emulation proves".
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from bentos.training.data import Split, records
from contract.schema import ModelSchema
from tests.support import pod_emulator as pe

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "modelguard"
NAMESPACE = "modelguard"
RELEASE = "rel"
BENTOML = ROOT / ".venv" / "bin" / "bentoml"
# Stands in for docker.io/curlimages/curl (Alpine, user curl_user): this Debian's sh and curl.
CURL_IMAGE = 'FROM debian:bookworm-slim\nUSER 100:101\nENTRYPOINT ["/entrypoint.sh"]\n'
REPLAY_RECORDS = 3000
Doc = dict[str, Any]

pytestmark = pytest.mark.skipif(
    pe.missing_capability() is not None, reason=str(pe.missing_capability())
)


def helm(*args: str) -> list[Doc]:
    helm_bin = shutil.which(
        "helm", path=f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    )
    assert helm_bin, "helm not found: run scripts/install-tools.sh"
    out = subprocess.run(
        [helm_bin, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render(version: str, *sets: str) -> list[Doc]:
    """The chart with the test's model version and a short analysis interval (extraEnv)."""
    return helm(
        "--set",
        f"predictor.model.version={version}",
        "--set",
        "monitor.extraEnv[0].name=MONITOR_ANALYSIS_INTERVAL_SECONDS",
        "--set-string",
        "monitor.extraEnv[0].value=2",
        *[a for s in sets for a in ("--set", s)],
    )


def build_bento(context: Path, tag: str, out: Path) -> Path:
    """`bentoml build` in `context` packing model `tag`, `bentoml export`ed and unpacked."""
    env = {**os.environ, "PREDICTOR_MODEL_TAG": tag}
    built = subprocess.run(
        [str(BENTOML), "build", str(context), "--output", "tag"],
        capture_output=True,
        text=True,
        env=env,
        cwd=context,
        check=True,
        timeout=300,
    ).stdout
    bento_tag = built.strip().splitlines()[-1].removeprefix("__tag__:")
    archive = out.with_suffix(".bento")
    subprocess.run(
        [str(BENTOML), "export", bento_tag, str(archive)],
        capture_output=True,
        env=env,
        check=True,
        timeout=300,
    )
    out.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="tar")
    return out


def the_pod(
    component: str,
    docs: list[Doc],
    image: pe.Image,
    net: pe.Network,
    work: Path,
    name: str | None = None,
) -> pe.Pod:
    """The emulated pod of `component` (predictor, monitor, test) in the rendered `docs`."""
    meta, spec = pe.pod_specs(docs)[component]
    name = name or component
    return pe.Pod(
        name=name, meta=meta, spec=spec, image=image, docs=docs, network=net, workdir=work / name
    )


def settings_line(pod: pe.Pod) -> str:
    found = re.findall(r"effective settings: (.*)", pod.log())
    assert found, f"{pod.name} logged no effective settings:\n{pod.tail()}"
    return found[-1]


def unread_env(container: Doc, line: str, prefix: str) -> list[str]:
    """The container's `prefix`* env vars its process's effective settings do not show with
    the value the manifest gives (secrets: shown masked)."""
    shown = dict(re.findall(r"(\w+)=(\S*)", line)) if "=" in line.split(" ")[0] else {}
    if not shown:  # the monitor logs a dict
        shown = {f"{prefix}{k.upper()}": str(v) for k, v in _dict_of(line).items()}
    bad = []
    for e in container.get("env", []):
        name = e["name"]
        if not name.startswith(prefix):
            continue
        if name not in shown:
            bad.append(f"{name}: not read")
        elif "value" in e and not _same(shown[name], str(e["value"])):
            bad.append(f"{name}: read as {shown[name]!r}, set to {e['value']!r}")
    return bad


def _same(shown: str, given: str) -> bool:
    if shown.rstrip("/") == given.rstrip("/"):
        return True
    try:
        return float(shown) == float(given)
    except ValueError:
        return False


def _dict_of(text: str) -> dict[str, Any]:
    import ast

    value = ast.literal_eval(text)
    assert isinstance(value, dict)
    return value


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_tag(trained_models: dict[str, str]) -> str:
    return trained_models["good"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pods")


@pytest.fixture(scope="module")
def predictor_image(model_tag: str, work: Path) -> pe.Image:
    bento = build_bento(ROOT, model_tag, work / "predictor-bento")
    return pe.build_image(bento / "env/docker/Dockerfile", bento, work / "predictor-image")


@pytest.fixture(scope="module")
def monitor_image(work: Path) -> pe.Image:
    return pe.build_image(ROOT / "docker/monitor.Dockerfile", ROOT, work / "monitor-image")


@pytest.fixture(scope="module")
def curl_image(work: Path) -> pe.Image:
    dockerfile = work / "curl.Dockerfile"
    dockerfile.write_text(CURL_IMAGE)
    (work / "curl-ctx").mkdir()
    return pe.build_image(dockerfile, work / "curl-ctx", work / "curl-image")


@pytest.fixture(scope="module")
def docs(model_tag: str) -> list[Doc]:
    return render(model_tag.split(":")[1])


@pytest.fixture(scope="module")
def net() -> Iterator[pe.Network]:
    network = pe.Network()
    yield network
    network.close()


@pytest.fixture(scope="module")
def monitor(
    docs: list[Doc], monitor_image: pe.Image, net: pe.Network, work: Path
) -> Iterator[pe.Pod]:
    with pe.running(the_pod("monitor", docs, monitor_image, net, work)) as pod:
        pod.wait_startup()
        yield pod


@pytest.fixture(scope="module")
def predictor(
    docs: list[Doc], predictor_image: pe.Image, net: pe.Network, work: Path, monitor: pe.Pod
) -> Iterator[pe.Pod]:
    with pe.running(the_pod("predictor", docs, predictor_image, net, work)) as pod:
        pod.wait_startup()
        yield pod


@pytest.fixture
def own_net() -> Iterator[pe.Network]:
    """A node of its own, for a pod whose port must not meet the running predictor's."""
    network = pe.Network()
    yield network
    network.close()


def reader(docs: list[Doc]) -> dict[str, str]:
    """The reader role's bearer header, from the Secret the chart rendered for it."""
    (secret,) = [
        d
        for d in docs
        if d["kind"] == "Secret"
        and d["metadata"]["labels"]["modelguard.dev/token-role"] == "reader"
    ]
    token = base64.b64decode(secret["data"]["token"]).decode()
    return {"Authorization": f"Bearer {token}"}


def monitor_versions(net: pe.Network, docs: list[Doc]) -> list[Doc]:
    status, body = net.http("GET", "http://127.0.0.1:8080/v1/models", headers=reader(docs))
    assert status == 200, body
    value = json.loads(body)
    assert isinstance(value, list)
    return value


def valid(split: Split, schema: ModelSchema) -> pd.DataFrame:
    """Replay rows a predictor accepts (the schema's ranges and nullability)."""
    return split.replay[schema.valid_rows(split.replay)]


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# ----------------------------------------------------------------------------- the pods


def test_every_rendered_workload_is_emulated(docs: list[Doc]) -> None:
    assert set(pe.pod_specs(docs)) == {"predictor", "monitor", "test"}
    assert pe.service_port_problems(docs) == []


def test_images_are_laid_out_as_their_dockerfiles(
    predictor_image: pe.Image, monitor_image: pe.Image
) -> None:
    p = predictor_image
    assert p.env["BENTOML_HOME"] == "/home/bentoml/" and p.workdir == "/home/bentoml/bento"
    assert p.uid_gid() == (1034, 1034) and p.site_packages == ["/app/.venv"]
    assert (p.root / "home/bentoml/bento/models").is_dir()  # the Bento carries its model
    for d in ("bentos", "models", "envs", "tmp"):  # docker/predictor-setup.sh
        assert (p.root / "home/bentoml" / d).is_dir(), d
    m = monitor_image
    assert m.workdir == "/app" and m.uid_gid() == (10001, 10001)
    assert m.entrypoint == ["python", "-m", "monitor", "serve"]
    assert (m.root / "app/monitor/__main__.py").exists() and not (m.root / "app/bentos").exists()


def test_monitor_pod_starts_and_passes_its_probes(monitor: pe.Pod) -> None:
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        ok, what = monitor.probe(kind)
        assert ok, f"{kind}: {what}\n{monitor.tail()}"
    assert monitor.exec(["id", "-u"]).strip() == "10001"
    assert "Read-only file system" in monitor.exec(["sh", "-c", "touch /app/x 2>&1 || true"])
    assert monitor.exec(["sh", "-c", "ls -d /var/lib/modelguard/monitor.db"]).strip()
    assert unread_env(monitor.container, settings_line(monitor), "MONITOR_") == []


def test_predictor_pod_starts_and_passes_its_probes(predictor: pe.Pod) -> None:
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        ok, what = predictor.probe(kind)
        assert ok, f"{kind}: {what}\n{predictor.tail()}"
    assert predictor.exec(["id", "-u"]).strip() == "1034"
    out = predictor.exec(
        ["sh", "-c", "touch /home/bentoml/x 2>&1 || true; touch /tmp/x && echo tmp-ok"]
    )
    assert "Read-only file system" in out and "tmp-ok" in out
    assert unread_env(predictor.container, settings_line(predictor), "PREDICTOR_") == []


def test_helm_test_pod_predicts_through_the_service(
    docs: list[Doc], curl_image: pe.Image, net: pe.Network, work: Path, predictor: pe.Pod
) -> None:
    with pe.running(the_pod("test", docs, curl_image, net, work)) as pod:
        code = pod.wait_exit(120)
        assert code == 0, pod.log()
    assert "readyz ok" in pod.log() and "prediction ok" in pod.log()


def test_records_reach_the_monitor_through_its_service(
    docs: list[Doc],
    predictor: pe.Pod,
    monitor: pe.Pod,
    net: pe.Network,
    model_tag: str,
    split: Split,
    schema: ModelSchema,
) -> None:
    """Registration (the rendered Secret's token on both sides) and one real ingest."""
    body = json.dumps({"records": records(valid(split, schema).iloc[:5], schema)}).encode()
    status, answer = net.http(
        "POST", "http://127.0.0.1:3000/predict", body, {"Content-Type": "application/json"}
    )
    assert status == 200, answer
    version = model_tag.split(":")[1]

    def ingested() -> Doc | None:
        found = [v for v in monitor_versions(net, docs) if v["version"] == version]
        ok = found and found[0]["registered_at"] and found[0]["records"] >= 5
        return found[0] if ok else None

    wait_until(ingested, 60, f"the monitor to hold {version} registered with its records")


def test_memory_limits_hold_through_a_replay(
    docs: list[Doc],
    predictor: pe.Pod,
    monitor: pe.Pod,
    net: pe.Network,
    model_tag: str,
    split: Split,
    schema: ModelSchema,
) -> None:
    rows = records(valid(split, schema).iloc[:REPLAY_RECORDS], schema)
    for i in range(0, len(rows), 100):
        body = json.dumps({"records": rows[i : i + 100]}).encode()
        status, answer = net.http(
            "POST",
            "http://127.0.0.1:3000/predict",
            body,
            {"Content-Type": "application/json"},
            timeout=30,
        )
        assert status == 200, answer
    version = model_tag.split(":")[1]

    def analysed() -> list[Doc]:
        status, body = net.http(
            "GET",
            f"http://127.0.0.1:8080/v1/models/rain_forecast/chunks?version={version}",
            headers=reader(docs),
        )
        chunks = json.loads(body) if status == 200 else []
        return chunks if len(chunks) >= REPLAY_RECORDS // 500 else []

    wait_until(analysed, 120, "the monitor to analyse the replay's chunks")
    for pod in (predictor, monitor):
        assert pod.alive(), pod.tail()
        assert pod.cgroup is not None
        limit = pod.memory_limit()
        assert limit is not None and pod.cgroup.limit == limit
        assert pod.cgroup.oom_kills() == 0
        peak = pod.cgroup.peak()
        print(
            f"{pod.name}: {pod.cgroup.kind} limit {limit >> 20} MiB, peak {peak and peak >> 20} MiB"
        )
        for kind in ("livenessProbe", "readinessProbe"):
            ok, what = pod.probe(kind)
            assert ok, what


# ----------------------------------------------------------------------------- broken charts fail


def test_a_memory_limit_the_predictor_outgrows_fails(
    model_tag: str, predictor_image: pe.Image, own_net: pe.Network, work: Path
) -> None:
    docs = render(
        model_tag.split(":")[1],
        "predictor.resources.requests.memory=64Mi",
        "predictor.resources.limits.memory=128Mi",
    )
    pod = the_pod("predictor", docs, predictor_image, own_net, work, name="predictor-128mi")
    with pe.running(pod):
        with pytest.raises(pe.StartupFailedError) as failed:
            pod.wait_startup()
        assert pod.cgroup is not None
        if pod.cgroup.kind != "prlimit":  # the kernel killed it for the limit
            assert pod.cgroup.oom_kills() >= 1, failed.value
        print(f"128Mi ({pod.cgroup.kind}): {str(failed.value).splitlines()[0]}")


def test_probes_with_a_wrong_path_or_port_fail(predictor: pe.Pod) -> None:
    probe = copy.deepcopy(predictor.container["readinessProbe"])
    probe["httpGet"]["path"] = "/ready"
    ok, what = predictor.probe("readinessProbe", probe)
    assert not ok and "404" in what
    probe["httpGet"]["path"], probe["httpGet"]["port"] = "/readyz", 3001
    ok, what = predictor.probe("readinessProbe", probe)
    assert not ok and "no answer" in what


def test_a_wrong_container_port_breaks_the_service(docs: list[Doc]) -> None:
    broken = copy.deepcopy(docs)
    for d in broken:
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-predictor"):
            d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 3001
    assert pe.service_port_problems(broken)


def test_an_env_var_the_predictor_does_not_read_is_caught(predictor: pe.Pod) -> None:
    container = copy.deepcopy(predictor.container)
    container["env"].append({"name": "PREDICTOR_SAMPLING_RATE", "value": "0.5"})
    assert unread_env(container, settings_line(predictor), "PREDICTOR_") == [
        "PREDICTOR_SAMPLING_RATE: not read"
    ]


def test_without_the_tmp_emptydir_the_predictor_fails(
    docs: list[Doc], predictor_image: pe.Image, own_net: pe.Network, work: Path
) -> None:
    pod = the_pod("predictor", docs, predictor_image, own_net, work, name="predictor-no-tmp")
    pod.spec = copy.deepcopy(pod.spec)
    container = pod.spec["containers"][0]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    with pe.running(pod), pytest.raises(pe.StartupFailedError, match="exited"):
        pod.wait_startup()


def test_without_the_bentoml_home_directories_the_predictor_fails(
    docs: list[Doc], model_tag: str, own_net: pe.Network, work: Path
) -> None:
    """Issue 16: the Bento's image without docker/predictor-setup.sh crash-loops."""
    context = work / "context-without-fix"
    for part in ("bentos", "contract", "docker"):
        shutil.copytree(ROOT / part, context / part, ignore=shutil.ignore_patterns("__pycache__"))
    bentofile = (ROOT / "bentofile.yaml").read_text()
    (context / "bentofile.yaml").write_text(
        "\n".join(line for line in bentofile.splitlines() if "setup_script" not in line)
    )
    bento = build_bento(context, model_tag, work / "bento-without-fix")
    image = pe.build_image(bento / "env/docker/Dockerfile", bento, work / "image-without-fix")
    assert not (image.root / "home/bentoml/bentos").exists()
    pod = the_pod("predictor", docs, image, own_net, work, name="predictor-without-fix")
    with pe.running(pod), pytest.raises(pe.StartupFailedError, match="Read-only file system"):
        pod.wait_startup()
