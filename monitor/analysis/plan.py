"""How a model is chunked: its `ChunkPlan`, event-time period boundaries, and chunk sizing
from the reference's sampling error.

By rows, `rows=None` is the smallest chunk whose ROC AUC sampling error on the reference is
within `max_sampling_error`; by event time, one chunk per `period` (UTC; weeks start on
Monday), its `chunk_index` the period's number since `period_origin_us`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from contract.registration import Registration
from monitor.analysis.estimation import rows_for_sampling_error
from monitor.core.drift_settings import DriftSettings
from monitor.core.gap import GapRules

DEFAULT_MAX_SAMPLING_ERROR = 0.025
US = 1_000_000
_MONDAY_US = 4 * 86_400 * US  # 1970-01-05, the first Monday after the epoch


@dataclass(frozen=True)
class ChunkPlan:
    """How to chunk one model: by `rows` (None: derived from the reference) or by `period`;
    and, from the same ModelMonitor, how its features' drift is judged (`drift`)."""

    rows: int | None = None
    period: timedelta | None = None
    max_sampling_error: float = DEFAULT_MAX_SAMPLING_ERROR
    gaps: GapRules = field(default_factory=GapRules)  # which chunks the exported gap counts
    drift: DriftSettings = field(default_factory=DriftSettings)  # spec.drift, per feature


@dataclass(frozen=True)
class Sizing:
    """What a version's reference says about chunk sizes."""

    reference_rows: int
    derived_rows: int | None
    problem: str | None

    @classmethod
    def of_reference(cls, reg: Registration, max_sampling_error: float) -> Sizing:
        """The reference's size and the smallest chunk within the sampling-error bound."""
        reference = reg.reference_frame()
        label = reference[reg.schema.label.name].to_numpy(dtype=float, na_value=np.nan)
        scores = reference["probability"].to_numpy(dtype=float, na_value=np.nan)
        rows, problem = rows_for_sampling_error(label, scores, max_sampling_error)
        return cls(len(reference), rows, problem)


def period_origin_us(period: timedelta) -> int:
    """Where period 0 starts: the epoch, or its first Monday for whole weeks."""
    return _MONDAY_US if period % timedelta(weeks=1) == timedelta(0) else 0
