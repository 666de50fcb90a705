"""Schema files across versions: a version-1 file (as `schema infer` wrote it before version
2) loads with its ranges as limits; a version-2 file with version-1 keys is refused, naming
the file and the feature (exit code 2 through the CLI's BadInputError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bentos.cli.errors import BadInputError
from bentos.cli.schema_file import load
from contract.schema import Range

V1_FILE = """\
# modelguard feature schema, inferred by `modelguard schema infer` from data.csv (900 rows).
schema_version: 1
time_column: when
label:
  name: outcome
  description: ''
  positive_class: 1
threshold: 0.5
segment: color
features:
  - {name: color, dtype: category, nullable: false, categories: [blue, green, red], description: ''}
  - {name: speed, dtype: float, min: 0.0, max: 54.12, nullable: true, description: ''}
  - {name: count, dtype: int, min: 0, max: 21, nullable: false, description: ''}
"""


def test_a_version_1_file_loads_with_its_ranges_as_limits(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(V1_FILE)
    loaded = load(path)
    color, speed, count = loaded.schema.features
    assert loaded.time_column == "when" and loaded.schema.schema_version == 2
    assert speed.limits == Range(min=0, max=54.12) and speed.expected is None
    assert count.limits == Range(min=0, max=21) and color.unknown == "refuse"


def test_a_version_2_file_with_version_1_keys_names_the_feature(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(V1_FILE.replace("schema_version: 1", "schema_version: 2"))
    with pytest.raises(BadInputError) as err:
        load(path)
    assert "field features.1: " in str(err.value) and "expected: {min, max}" in str(err.value)
