"""The chart's progressive-delivery PromQL, evaluated by a real Prometheus over the real stack.

The chart is rendered with both templates on (Argo Rollouts AnalysisTemplate, Flagger
MetricTemplate); the exact query strings are taken from the rendered objects and their
placeholders filled in as the controllers do (docs/progressive-delivery.md, "The exact
rendered queries"). Then real predictors, the real monitor against kmock's emulator and a
real Prometheus (1 s scrapes, a `namespace` target label as a ServiceMonitor adds) serve a
canary split of the 2013 replay: every 5th request (one simulated day) goes to the canary's
predictor, the others to the known-good's, while the Deployment stays at the known-good.
After every complete chunk of the canary's own rows the replay waits until Prometheus holds
the monitor's analysis of it, and both queries are evaluated through /api/v1/query; Argo's
success/failure conditions are evaluated on the result exactly as written.

- Empty (Argo Inconclusive, Flagger "no values found") while fewer than minRows canary rows
  stand behind the gap; checked at every request, not only at the checkpoints.
- The equivalent retrain: successCondition holds at every checkpoint with a result.
- The worse release (no-key-features): failureCondition within K canary chunks.
- Never NaN; the known-good never has a gap series and stays the known-good.

Figures on a line starting with `E2E-FIGURES progressive-delivery`.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from bentos.training.data import load_weather, time_split, weather_schema
from replay.driver import Replayer
from replay.launcher import Process
from replay.prometheus import query
from tests.e2e.harness import MODEL, NS, Stack, spec, stack, version_of
from tests.e2e.test_scenarios import NO_GATE, figures
from tests.support.kube import kube_emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".tools" / "bin" / "helm"
CHUNK = 500  # rows per chunk of each version (the ModelMonitor's chunkSize)
MIN_ROWS = 1000  # progressiveDelivery.minRows: two canary chunks behind the gap
CANARY_EVERY = 5  # every 5th request (one simulated day each) goes to the canary: ~20%
MAX_CHUNKS_TO_FAIL = 4  # the target for the worse canary
GAP = "modelguard_estimated_gap_cumulative"


@dataclass(frozen=True)
class Rendered:
    argo_query: str  # AnalysisTemplate spec.metrics[0].provider.prometheus.query
    flagger_query: str  # MetricTemplate spec.query
    success: str  # Argo successCondition
    failure: str  # Argo failureCondition
    max_gap: float  # progressiveDelivery.maxGap as rendered


def render_chart() -> Rendered:
    out = subprocess.run(
        [
            str(HELM),
            "template",
            "t",
            str(ROOT / "helm" / "modelguard"),
            "--namespace",
            NS,
            "--api-versions",
            "argoproj.io/v1alpha1",
            "--api-versions",
            "flagger.app/v1beta1",
            "--set",
            "progressiveDelivery.argoRollouts.enabled=true",
            "--set",
            "progressiveDelivery.flagger.enabled=true",
            "--set",
            f"predictor.model.name={MODEL}",
            "--set",
            f"progressiveDelivery.minRows={MIN_ROWS}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    [analysis] = [d for d in docs if d["kind"] == "AnalysisTemplate"]
    [metric] = [d for d in docs if d["kind"] == "MetricTemplate"]
    [argo] = analysis["spec"]["metrics"]
    values = yaml.safe_load((ROOT / "helm" / "modelguard" / "values.yaml").read_text())
    max_gap = float(values["progressiveDelivery"]["maxGap"])
    assert argo["successCondition"] == f"len(result) > 0 && result[0] >= {max_gap:g}"
    assert argo["failureCondition"] == f"len(result) > 0 && result[0] < {max_gap:g}"
    return Rendered(
        argo_query=argo["provider"]["prometheus"]["query"],
        flagger_query=metric["spec"]["query"],
        success=argo["successCondition"],
        failure=argo["failureCondition"],
        max_gap=max_gap,
    )


def fill_argo(q: str, canary_version: str) -> str:
    """What Argo Rollouts sends: the AnalysisRun's `canary-version` argument filled in."""
    filled = q.replace("{{args.canary-version}}", canary_version)
    assert "{{" not in filled, filled
    return filled


def fill_flagger(q: str, namespace: str, target: str) -> str:
    """What Flagger sends: {{ namespace }}, {{ target }} (the Canary's), no templateVariables."""
    filled = re.sub(r"\{\{\s*namespace\s*\}\}", namespace, q)
    filled = re.sub(r"\{\{\s*target\s*\}\}", target, filled)
    assert "{{" not in filled, filled
    return filled


CONDITION = re.compile(r"len\(result\) > 0 && result\[0\] (>=|<) -?[0-9.]+")


def argo_condition(condition: str, result: list[float]) -> bool:
    """An Argo Rollouts condition (expr-lang) as written, on the provider's `result` (the
    vector's values, in order): only `&&` is spelled differently in Python."""
    assert CONDITION.fullmatch(condition), condition
    expr = condition.replace("&&", "and")
    return bool(eval(expr, {"__builtins__": {}}, {"len": len, "result": result}))


def values_of(prom: Process, expr: str) -> list[float]:
    out = []
    for sample in query(prom, expr):
        raw = sample["value"][1]
        assert raw.lower() not in ("nan", "+inf", "-inf"), (expr, sample)
        out.append(float(raw))
    return out


def stored_records(s: Stack) -> dict[str, int]:
    assert s.monitor is not None
    versions = httpx.get(f"{s.monitor.url}/v1/models", timeout=30).json()
    return {str(v["version"]): int(v["records"]) for v in versions}


def analysed_chunks(s: Stack, version: str) -> int:
    assert s.monitor is not None
    chunks = httpx.get(f"{s.monitor.url}/v1/models/{MODEL}/chunks", timeout=30).json()
    return sum(1 for c in chunks if c["version"] == version)


def wait_scraped(s: Stack, prom: Process, version: str, chunks: int, timeout: float = 120) -> None:
    """Until the monitor analysed `chunks` chunks of `version` and Prometheus scraped the gap
    gauges of that analysis (rows and gap come from the same scrape)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stored_records(s).get(version, 0) >= chunks * CHUNK and (
            analysed_chunks(s, version) >= chunks
        ):
            got = query(prom, f'modelguard_estimated_gap_chunks{{version="{version}"}}')
            if got and int(float(got[0]["value"][1])) >= chunks:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{chunks} chunks of {version} not in Prometheus after {timeout}s")


def replay_rows() -> tuple[pd.DataFrame, Any]:
    schema = weather_schema()
    return time_split(load_weather(), schema).replay, schema


@pytest.mark.parametrize("canary_release", ["retrain", "no-key-features"])
def test_rendered_queries_gate_a_canary_split_on_a_real_prometheus(
    tmp_path: Path, trained_models: dict[str, str], canary_release: str
) -> None:
    rendered = render_chart()
    good = version_of(trained_models["good"])
    canary = version_of(trained_models[canary_release])
    argo_q = fill_argo(rendered.argo_query, canary)
    argo_default_q = fill_argo(rendered.argo_query, ".+")  # the template's default argument
    flagger_q = fill_flagger(rendered.flagger_query, NS, "predictor")
    worse = canary_release == "no-key-features"

    with kube_emulator() as kube, stack(tmp_path, kube, trained_models) as s:
        s.create("good", spec(mode="dryRun", knownGood=good, chunkSize=CHUNK, **NO_GATE))
        monitor = s.start_monitor()
        s.start_predictor("good")
        s.start_predictor(canary_release)
        prom = s.start_prometheus(labels={"namespace": NS})
        urls = {good: s.predictors[good].url, canary: s.predictors[canary].url}

        rows, schema = replay_rows()
        player = Replayer(rows, schema, monitor.url, labels_headers=monitor.headers("labels"))
        requests = {good: 0, canary: 0}
        checkpoints: list[dict[str, Any]] = []
        per_request_evaluations = 0

        def evaluate(canary_rows: int, chunks: int | None) -> dict[str, Any]:
            argo = values_of(prom, argo_q)
            flagger = values_of(prom, flagger_q)
            assert len(argo) <= 1 and len(flagger) <= 1, (argo, flagger)
            if canary_rows < MIN_ROWS:  # Prometheus can only lag behind what was sent
                assert argo == [] and flagger == [], (canary_rows, argo, flagger)
            return {
                "rows_sent": player.stats.rows_sent,
                "canary_rows_sent": canary_rows,
                "canary_chunks": chunks,
                "argo": argo[0] if argo else None,
                "flagger": flagger[0] if flagger else None,
                "argo_success": argo_condition(rendered.success, argo),
                "argo_failure": argo_condition(rendered.failure, argo),
                # Flagger: no values = a failed check; else failed when val < thresholdRange.min.
                "flagger_pass": bool(flagger) and not flagger[0] < rendered.max_gap,
            }

        def checkpoint(chunks: int) -> None:
            wait_scraped(s, prom, canary, chunks)
            point = evaluate(player.stats.predictions.get(canary, 0), chunks)
            # The default `.+` selects the same one serving non-known-good version.
            assert values_of(prom, argo_default_q) == (
                [] if point["argo"] is None else [point["argo"]]
            )
            gauges = {
                name: values_of(prom, f'{name}{{version="{canary}"}}')
                for name in (
                    GAP,
                    f"{GAP}_lower",
                    f"{GAP}_upper",
                    "modelguard_estimated_gap_rows",
                )
            }
            point["gap"] = gauges[GAP][0]
            point["gap_band"] = [
                round(band[0], 4) if (band := gauges[f"{GAP}_{end}"]) else None
                for end in ("lower", "upper")
            ]
            point["gap_rows"] = int(gauges["modelguard_estimated_gap_rows"][0])
            # The known-good has no gap series, stays the known-good, keeps the Deployment.
            assert values_of(prom, f'{GAP}{{version="{good}"}}') == []
            assert s.status().get("knownGoodVersion") == good
            assert s.live_version() == good
            checkpoints.append(point)

        def route(t: pd.Timestamp) -> str:
            nonlocal per_request_evaluations
            sent = player.stats.predictions.get(canary, 0)
            done = sent // CHUNK
            if done > len(checkpoints):
                checkpoint(done)
            else:
                evaluate(sent, None)
                per_request_evaluations += 1
            index = requests[good] + requests[canary]
            version = canary if index % CANARY_EVERY == CANARY_EVERY - 1 else good
            requests[version] += 1
            return urls[version]

        player.run(route)
        sent = player.stats.predictions.get(canary, 0)
        if sent // CHUNK > len(checkpoints):
            checkpoint(sent // CHUNK)
        dry_runs = [e["message"] for e in s.events("RollbackDryRun")]

    assert set(player.stats.predictions) == {good, canary}
    share = player.stats.predictions[canary] / player.stats.rows_sent
    with_evidence = [p for p in checkpoints if p["argo"] is not None]
    first = with_evidence[0] if with_evidence else None
    assert first is not None, checkpoints
    # Argo and Flagger read the same number (one canary, the known-good has no series).
    assert all(p["argo"] == p["flagger"] for p in checkpoints), checkpoints
    assert all(p["argo"] is None for p in checkpoints if p["gap_rows"] < MIN_ROWS)
    assert all(p["argo"] is not None for p in checkpoints if p["gap_rows"] >= MIN_ROWS)
    k: int | None = None
    if worse:
        failing = [p for p in with_evidence if p["argo_failure"]]
        assert failing, checkpoints
        k = int(failing[0]["canary_chunks"])
        assert not any(p["flagger_pass"] for p in checkpoints)
        assert k <= MAX_CHUNKS_TO_FAIL, checkpoints
    else:
        assert all(p["argo_success"] and not p["argo_failure"] for p in with_evidence)
        assert all(p["flagger_pass"] for p in with_evidence)
    assert all(math.isfinite(p["gap"]) for p in checkpoints)

    figures(
        "progressive-delivery",
        canary=canary_release,
        canary_version=canary,
        argo_query=argo_q,
        flagger_query=flagger_q,
        max_gap=rendered.max_gap,
        min_rows=MIN_ROWS,
        chunk_size=CHUNK,
        rows_sent=player.stats.rows_sent,
        canary_rows=player.stats.predictions[canary],
        canary_share=round(share, 3),
        requests=requests,
        per_request_evaluations=per_request_evaluations,
        first_result_at_chunks=first["canary_chunks"],
        first_result_at_gap_rows=first["gap_rows"],
        first_result_at_rows_sent=first["rows_sent"],
        k_chunks_to_failure=k,
        checkpoints=[
            {key: (round(v, 4) if isinstance(v, float) else v) for key, v in p.items()}
            for p in checkpoints
        ],
        rollback_dry_run_events=dry_runs,
    )
