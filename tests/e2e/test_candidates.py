"""Candidates end to end: judged on the rows the known-good serves, before they serve.

Real predictor (`bentoml serve`) for the known-good version, the real monitor against kmock's
emulator, the 2013 replay from September with labels 4 simulated hours later. Two candidates
never serve a request: the equivalent retrain (declared through the API, which registers it)
and the release trained without its strongest features (registered, then declared in the
ModelMonitor's `spec.candidates`). What users see is checked: `status.candidates`, the
`CandidateEvaluated` condition, the candidate metrics, the API listing -- and then the worse
candidate is deployed anyway and is rolled back (dry run: the Event) at its first request.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest

from bentos.packaging import registration_from_bento_model
from tests.e2e.harness import MODEL, Stack, spec, stack, version_of
from tests.e2e.test_scenarios import NO_GATE, figures
from tests.support.kube import kube_emulator

pytestmark = pytest.mark.slow


def registration_body(tag: str) -> dict[str, Any]:
    reg = registration_from_bento_model(bentoml.models.get(tag))
    return reg.model_dump(by_alias=True, mode="json")


def wait_verdicts(s: Stack, wanted: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    """Until status.candidates shows every wanted verdict (or the timeout)."""
    deadline = time.monotonic() + timeout
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = {c["version"]: c for c in s.status().get("candidates", [])}
        if all(found.get(v, {}).get("verdict") == w for v, w in wanted.items()):
            return found
        time.sleep(1)
    raise AssertionError(f"verdicts never reached {wanted}: {found}")


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_candidates_are_judged_on_the_known_goods_rows_and_a_worse_one_never_keeps_serving(
    tmp_path: Path, trained_models: dict[str, str]
) -> None:
    good = version_of(trained_models["good"])
    retrain = version_of(trained_models["retrain"])
    bad = version_of(trained_models["no-key-features"])
    with kube_emulator() as kube, stack(tmp_path, kube, trained_models) as s:
        s.create("good", spec(mode="dryRun", knownGood=good, candidates=[bad], **NO_GATE))
        monitor = s.start_monitor()
        s.start_predictor("good")
        operator = monitor.headers("operator")
        resp = httpx.post(
            f"{monitor.url}/v1/models/{MODEL}/candidates",
            json=registration_body(trained_models["retrain"]),
            headers=operator,
            timeout=120,
        )
        assert resp.status_code == 201, resp.text
        resp = httpx.post(
            f"{monitor.url}/v1/models",
            json=registration_body(trained_models["no-key-features"]),
            headers=operator,
            timeout=120,
        )
        assert resp.status_code == 201, resp.text

        run = s.replay(start="2013-09-01", until="2013-10-15")
        s.wait_analysed()
        verdicts = wait_verdicts(s, {retrain: "Equivalent", bad: "Worse"})

        # Nothing of either candidate served: every row came from the known-good.
        assert set(run.stats.predictions) == {good}
        for version in (retrain, bad):
            assert verdicts[version]["baselineVersion"] == good
            assert verdicts[version]["chunks"] >= 3 and verdicts[version]["rows"] >= 1000
        assert float(verdicts[bad]["estimatedGap"]) < -0.03
        assert abs(float(verdicts[retrain]["estimatedGap"])) < 0.03
        summary = " ".join(f"{v}={verdicts[v]['verdict']}" for v in sorted(verdicts))
        assert s.status()["candidateSummary"] == summary
        condition = s.condition("CandidateEvaluated")
        assert (condition["status"], condition["reason"]) == ("True", "CandidateWorse")
        text = httpx.get(f"{monitor.url}/metrics", timeout=30).text
        assert metric(text, "modelguard_candidate_verdict", version=bad, verdict="Worse") == 1
        assert metric(text, "modelguard_candidate_verdict", version=bad, verdict="Better") == 0
        assert (
            metric(text, "modelguard_candidate_verdict", version=retrain, verdict="Equivalent") == 1
        )
        listing = httpx.get(f"{monitor.url}/v1/models/{MODEL}/candidates", timeout=30).json()
        listed = {c["version"]: c for c in listing["candidates"]}
        assert listed[bad]["sources"] == ["spec"] and listed[retrain]["sources"] == ["api"]
        assert listed[bad]["verdict"]["verdict"] == "Worse"
        assert s.events("CandidateWorse") and s.events("CandidateEquivalent")

        # Deployed anyway: the first reconcile after the Deployment changed says it would
        # roll it back (dryRun), on the candidate evidence, before a chunk of its own.
        s.start_predictor("no-key-features")
        s.release("no-key-features")
        late = s.replay(start="2013-10-15", until="2013-10-16")
        assert late.stats.predictions.get(bad, 0) > 0
        deadline = time.monotonic() + 60
        while not s.events("RollbackDryRun") and time.monotonic() < deadline:
            time.sleep(0.5)
        [event] = s.events("RollbackDryRun")
        assert bad in event["message"] and good in event["message"]
        assert "as a candidate" in event["message"]
        [dry] = [a for a in s.audit() if a.get("kind") == "dry-run-rollback"]
        assert dry["trigger"] == "candidate" and dry["fromVersion"] == bad
        assert bad in s.status().get("rejectedVersions", [])
        figures(
            "candidates",
            verdicts={v: c["verdict"] for v, c in verdicts.items()},
            gaps={v: c.get("estimatedGap") for v, c in verdicts.items()},
            chunks={v: c["chunks"] for v, c in verdicts.items()},
            bad_rows_served_before_event=late.stats.predictions.get(bad, 0),
        )
