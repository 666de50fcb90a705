"""Fixtures of the predictor-side unit tests: a small schema and the spool's real counters."""

from __future__ import annotations

import pytest

from bentos.shipping import ShippingStats
from contract.schema import ModelSchema


@pytest.fixture
def small_schema() -> ModelSchema:
    """Three features, one of each kind the request model has to check: a bounded float, a
    nullable int and a category (its categories are what an unknown value's error names)."""
    return ModelSchema.model_validate(
        {
            "features": [
                {"name": "temp", "dtype": "float", "min": -50, "max": 60},
                {"name": "hour", "dtype": "int", "min": 0, "max": 23, "nullable": True},
                {"name": "city", "dtype": "category", "categories": ["oslo", "rome"]},
            ],
            "label": {"name": "rain"},
        }
    )


@pytest.fixture
def stats() -> ShippingStats:
    """The counters the shipper hands its spool (`bentos.spool.SpoolCounters`)."""
    return ShippingStats()
