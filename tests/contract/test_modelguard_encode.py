"""`ModelSchema.encode`: what users train on is exactly what the predictor feeds the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.schema import Feature, LabelDefinition, ModelSchema, Range

SCHEMA = ModelSchema(
    features=[
        Feature(name="size", dtype="category", categories=["L", "M", "S"], nullable=True),
        Feature(name="weight", limits=Range(min=0, max=10), nullable=True),
        Feature(name="n", dtype="int", limits=Range(min=0, max=5)),
    ],
    label=LabelDefinition(name="y"),
)


def test_encode_is_to_matrix_with_names_and_categories_as_their_index() -> None:
    rows = pd.DataFrame(
        {"n": [1, 2, 3], "size": ["S", None, "L"], "weight": [1.5, np.nan, 3.0], "extra": 1}
    )
    encoded = SCHEMA.encode(rows)
    assert list(encoded.columns) == ["size", "weight", "n"]  # schema order, extras left out
    assert encoded["size"].tolist()[0::2] == [2.0, 0.0] and np.isnan(encoded["size"][1])
    np.testing.assert_array_equal(encoded.to_numpy(), SCHEMA.to_matrix(rows))
    assert all(dtype == np.float32 for dtype in encoded.dtypes)


def test_encode_refuses_unknown_categories_and_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"column 'size': 2 values outside .*\['XL', 'XS'\]"):
        SCHEMA.encode(pd.DataFrame({"size": ["XL", "XS", "M"], "weight": 1.0, "n": 1}))
    with pytest.raises(ValueError, match=r"columns missing from the frame: \['n'\]"):
        SCHEMA.encode(pd.DataFrame({"size": ["M"], "weight": [1.0]}))
