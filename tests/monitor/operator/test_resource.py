"""The ModelMonitor view: one rule per field, whatever shape the body arrives in."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.kube.events import event_body
from monitor.kube.watch import spec_changed
from monitor.operator.ports import EventNote
from monitor.operator.resource import ModelMonitor
from tests.monitor.operator.fakes import NOW

BODY: dict[str, Any] = {
    "apiVersion": "modelguard.dev/v1alpha1",
    "kind": "ModelMonitor",
    "metadata": {"name": "rain", "namespace": "ml", "uid": "u-1", "generation": 3},
    "spec": {"model": "rain_forecast", "targetRef": {"kind": "Deployment", "name": "predictor"}},
    "status": {
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "True"}, "not-a-condition"],
    },
}


def test_a_full_body_reads_into_every_field() -> None:
    monitor = ModelMonitor.from_body(BODY)
    assert (monitor.name, monitor.namespace, monitor.uid, monitor.generation) == (
        "rain",
        "ml",
        "u-1",
        3,
    )
    assert monitor.observed_generation == 2
    assert monitor.conditions == [{"type": "Ready", "status": "True"}]
    assert (monitor.declared_model, monitor.target_name) == ("rain_forecast", "predictor")
    assert monitor.spec is BODY["spec"]


@pytest.mark.parametrize(
    "metadata",
    [{"name": "rain"}, {"name": "rain", "namespace": ""}, {"name": "rain", "namespace": None}],
)
def test_one_namespace_default(metadata: dict[str, Any]) -> None:
    assert ModelMonitor.from_body({"metadata": metadata}).namespace == "default"


@pytest.mark.parametrize("body", [{}, {"metadata": None, "status": "x"}, {"metadata": ["a"]}])
def test_a_malformed_body_reads_as_empty(body: dict[str, Any]) -> None:
    monitor = ModelMonitor.from_body(body)
    assert (monitor.name, monitor.namespace, monitor.uid, monitor.generation) == (
        "",
        "default",
        None,
        None,
    )
    assert (monitor.conditions, monitor.observed_generation) == ([], 0)
    assert (monitor.declared_model, monitor.target_name) == (None, None)


def test_a_spec_that_is_not_an_object_is_kept_for_the_parser_to_reject() -> None:
    monitor = ModelMonitor.from_body({"metadata": {"name": "rain"}, "spec": ["model"]})
    assert monitor.spec == ["model"]
    assert monitor.declared_model is None


def test_event_and_watch_read_the_same_coordinates() -> None:
    monitor = ModelMonitor.from_body(BODY)
    body = event_body(monitor, EventNote("RolledBack", "m", NOW, "v2@2", warning=True))
    assert body["metadata"]["namespace"] == "ml"
    assert body["metadata"]["name"].startswith("rain.")
    assert body["involvedObject"] == {
        "apiVersion": "modelguard.dev/v1alpha1",
        "kind": "ModelMonitor",
        "name": "rain",
        "namespace": "ml",
        "uid": "u-1",
    }
    seen: dict[tuple[str, str], int] = {}
    assert spec_changed({"type": "MODIFIED", "object": BODY}, seen)
    assert seen == {("ml", "rain"): 3}
