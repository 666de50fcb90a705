"""Packaging the same booster again after the schema's version 2: the same model, not a
different one (a model store filled by an earlier release holds version-1 schema JSON)."""

from __future__ import annotations

import json

from bentos.cli.package import _same_schema
from contract.schema import ModelSchema

V1 = {
    "schema_version": 1,
    "features": [{"name": "temp", "min": -50.0, "max": 60.0}, {"name": "humid"}],
    "label": {"name": "rain"},
}


def test_a_version_1_schema_is_the_schema_it_reads_into() -> None:
    today = ModelSchema.model_validate(V1).model_dump_json()
    assert json.dumps(V1) != today  # stored bytes differ ...
    assert _same_schema(json.dumps(V1), today)  # ... the schema does not


def test_a_changed_schema_is_still_different() -> None:
    changed = {**V1, "features": [{"name": "temp", "min": -40.0, "max": 60.0}, {"name": "humid"}]}
    assert not _same_schema(json.dumps(V1), ModelSchema.model_validate(changed).model_dump_json())
    assert not _same_schema("not json", ModelSchema.model_validate(V1).model_dump_json())
