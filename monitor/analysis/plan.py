"""How a model is chunked: its `ChunkPlan`, event-time period boundaries, and chunk sizing
from the reference's sampling error.

By rows, `rows=None` is the smallest chunk whose ROC AUC sampling error on the reference is
within `max_sampling_error`; by event time, one chunk per `period` from `anchor` (the
ModelMonitor's `chunkAnchor`, else the model's first event): `PeriodGrid`, and the chunk's
number counts from the version's first period (periods.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
    anchor: datetime | None = None  # where periods start (None: the model's first event)
    max_sampling_error: float = DEFAULT_MAX_SAMPLING_ERROR
    gaps: GapRules = field(default_factory=GapRules)  # which chunks the exported gap counts
    drift: DriftSettings = field(default_factory=DriftSettings)  # spec.drift, per feature
    # spec.metrics.perFeature: export every feature's and metric's series, not the bounded
    # default; `metrics`: the performance metrics the ModelMonitor decides on (exported).
    per_feature: bool = False
    metrics: frozenset[str] = frozenset({"roc_auc"})


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
    """Where period 0 started before anchoring (the epoch, or its first Monday for whole
    weeks): how evidence stored by earlier releases numbered its periods."""
    return _MONDAY_US if period % timedelta(weeks=1) == timedelta(0) else 0


@dataclass(frozen=True)
class PeriodGrid:
    """Periods of `period_us` microseconds from `anchor_us`: period k is
    [anchor + k * period, anchor + (k + 1) * period)."""

    anchor_us: int
    period_us: int

    def ordinal(self, event_us: np.ndarray) -> np.ndarray:
        return (np.asarray(event_us, dtype=np.int64) - self.anchor_us) // self.period_us

    def start_us(self, ordinal: int) -> int:
        return self.anchor_us + int(ordinal) * self.period_us

    def ordinal_of(self, moment_us: int) -> int:
        return (int(moment_us) - self.anchor_us) // self.period_us

    def aligned(self, moment_us: int) -> bool:
        return (int(moment_us) - self.anchor_us) % self.period_us == 0
