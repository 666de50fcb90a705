"""Test-only serving variant: a training/serving skew the monitor must catch on score parity.

It serves the same model and logs the features exactly as received, but feeds the booster
`temp` converted from Fahrenheit to Celsius, the unit mistake of a hand-written serving
path. Its served scores therefore differ from the artifact's own on the logged inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import bentoml
import numpy as np

from bentos.service import SCHEMA, Predictor

_TEMP = SCHEMA.feature_names.index("temp")


@bentoml.service(name="modelguard_predictor_skewed", workers=1, traffic={"timeout": 120})
class SkewedPredictor(Predictor.inner):  # type: ignore[name-defined]
    def __init__(self) -> None:
        super().__init__()
        unskewed: Callable[[Sequence[Any]], np.ndarray] = self.to_matrix  # type: ignore[has-type]

        def celsius_temp(records: Sequence[Any]) -> np.ndarray:
            x = unskewed(records)
            x[:, _TEMP] = (x[:, _TEMP] - 32.0) * 5.0 / 9.0
            return x

        self.to_matrix = celsius_temp
