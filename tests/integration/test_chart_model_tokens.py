"""The chart's per-model credentials (monitor.auth.modelTokens, predictor.monitorToken) by
`helm template` (docs/monitor.md#trust-boundary): the Secret is mounted as a directory the
kubelet updates in place, the monitor is told the file's path, and the predictor reads its own
model's token instead of the global predictor token."""

from __future__ import annotations

from tests.integration.test_chart import Doc, env_of, one, template

SECRET = "rain-forecast-model-tokens"


def spec(docs: list[Doc], component: str) -> Doc:
    return one(docs, "Deployment", component)["spec"]["template"]["spec"]


def test_off_by_default_nothing_mounted() -> None:
    monitor = spec(template(), "monitor")
    assert "MONITOR_MODEL_TOKENS_FILE" not in env_of(monitor["containers"][0])
    assert "model-tokens" not in {v["name"] for v in monitor["volumes"]}


def test_secret_mounted_as_a_directory_and_the_predictor_reads_its_model_token() -> None:
    docs = template(
        "--set",
        f"monitor.auth.modelTokens.existingSecret={SECRET}",
        "--set",
        "monitor.auth.modelTokens.secretKey=tokens.json",
        "--set",
        "predictor.monitorToken.existingSecret=rain-forecast-predictor",
    )
    monitor = spec(docs, "monitor")
    container = monitor["containers"][0]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "model-tokens"]
    assert "subPath" not in mount and mount["readOnly"] is True  # updated in place
    path = env_of(container)["MONITOR_MODEL_TOKENS_FILE"]["value"]
    assert path == f"{mount['mountPath']}/tokens.json"
    [volume] = [v for v in monitor["volumes"] if v["name"] == "model-tokens"]
    assert volume["secret"]["secretName"] == SECRET
    assert volume["secret"]["items"] == [{"key": "tokens.json", "path": "tokens.json"}]
    predictor = spec(docs, "predictor")
    ref = env_of(predictor["containers"][0])["PREDICTOR_MONITOR_TOKEN"]["valueFrom"]
    assert ref["secretKeyRef"] == {"name": "rain-forecast-predictor", "key": "token"}
    assert SECRET not in str(predictor)  # the pods never see the other models' tokens
