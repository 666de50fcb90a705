"""A reconcile pass stays linear in the number of models (issue 24): the offline target asks
the store for its models once per pass (not once per model), and a pass with nothing new to
gate parses no registration's reference rows. Counted on a real SQLite store through a thin
counting wrapper (the store's own queries are tested in tests/monitor/store/)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.kube.offline import offline_target
from monitor.operator.reconciler import Operator
from monitor.store.sqlite import SqliteStore
from tests.support.kube import chunk

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingStore(SqliteStore):
    """The real store, counting the model listings and the full registration reads."""

    listings = 0
    full_registrations = 0

    def models(self) -> list[str]:
        self.listings += 1
        return super().models()

    def registration(
        self, model: str, version: str, *, with_reference: bool = True
    ) -> dict[str, Any]:
        self.full_registrations += with_reference
        return super().registration(model, version, with_reference=with_reference)


def populated(store: SqliteStore, models: int) -> None:
    """`models` models, one version each, with a reference and six healthy chunks."""
    reference = [{"temp": float(i), "label": i % 2} for i in range(50)]
    for m in range(models):
        model = f"model_{m:03d}"
        store.register(
            {
                "model": model,
                "version": "v1",
                "learner": "xgboost",
                "metrics": {"reference": {"roc_auc": 0.84}},
                "reference": reference,
                "artifact": base64.b64encode(b"unused").decode(),
            }
        )
        for i in range(6):
            evidence = chunk("v1", i, known_good_version=None, model=model)
            store.save_chunk(replace(evidence, first_seq=i * 500, last_seq=i * 500 + 499))


@pytest.mark.parametrize("models", [1, 6])
def test_a_pass_lists_the_models_once_and_an_idle_pass_parses_no_registration(
    tmp_path: Path, models: int
) -> None:
    store = CountingStore(tmp_path / "monitor.db")
    with store:
        populated(store, models)
        real: SqliteStore = store  # the Store protocol wants `__enter__ -> Self`
        operator = Operator(store, offline_target(real), clock=lambda: NOW)

        first = operator.reconcile_once()
        assert len(first) == models
        assert {r.decision.action for r in first if r.decision} == {"promote-known-good"}
        assert store.listings == 1

        store.listings = store.full_registrations = 0
        second = operator.reconcile_once()  # the known-good is live: the gate scores it once
        assert store.listings == 1
        assert 0 < store.full_registrations <= 3 * models

        store.listings = store.full_registrations = 0
        idle = operator.reconcile_once()
        assert [r.outcome for r in idle] == [r.outcome for r in second] == ["none"] * models
        assert all(r.error is None for r in idle)
        assert store.listings == 1
        assert store.full_registrations == 0  # the scores are known: no reference re-read


def test_a_model_registered_after_the_listing_is_still_found(tmp_path: Path) -> None:
    """The per-pass listing is a cache: a deployment it does not know is looked up afresh."""
    with SqliteStore(tmp_path / "monitor.db") as store:
        populated(store, 1)
        target = offline_target(store)
        assert len(target.list_monitors()) == 1
        populated(store, 2)  # model_001 registers after the pass listed the models
        seen = target.observe("default", "model-001-predictor")
        assert seen is not None and seen.live_version == "v1"
