"""Period chunks: the grid from its anchor, and which first or last period is partial."""

from __future__ import annotations

import numpy as np

from monitor.analysis.periods import iso_us, partial_flags
from monitor.analysis.plan import US, PeriodGrid
from monitor.core.chunk_labels import chunk_label, realized_label

DAY = 86_400 * US
ANCHOR = 1_672_531_200 * US  # 2023-01-01T00:00:00Z


def test_the_grid_counts_periods_from_its_anchor_not_the_epoch() -> None:
    grid = PeriodGrid(ANCHOR, 30 * DAY)
    events = ANCHOR + np.array([0, 29, 30, 89, 90]) * DAY
    assert grid.ordinal(events).tolist() == [0, 0, 1, 2, 3]
    assert iso_us(grid.start_us(1)) == "2023-01-31T00:00:00Z"
    assert grid.aligned(ANCHOR + 60 * DAY) and not grid.aligned(ANCHOR + DAY)
    assert grid.ordinal_of(ANCHOR - 1) == -1


def test_a_first_or_last_period_the_rows_cover_in_part_is_partial() -> None:
    grid = PeriodGrid(ANCHOR, 30 * DAY)
    # Daily rows from day 10 (a release mid-period) to day 74 (then the rows end).
    days = np.arange(10, 75)
    events = ANCHOR + days * DAY
    ordinal = grid.ordinal(events)
    assert partial_flags(events, ordinal, grid, first=0, last=2) == {0: True, 1: False, 2: True}
    # The same rows with later periods still to come: the last one seen is not the last.
    assert partial_flags(events, ordinal, grid, first=0, last=None)[2] is False
    # Daily rows at noon from the anchor on: one spacing late is no partial period.
    noon = ANCHOR + (np.arange(0, 60) * DAY + DAY // 2)
    flags = partial_flags(noon, grid.ordinal(noon), grid, first=0, last=1)
    assert flags == {0: False, 1: False}


def test_a_chunk_by_period_is_named_with_its_range() -> None:
    chunk = {
        "chunk_index": 3,
        "period_start": "2023-04-01T00:00:00Z",
        "period_end": "2023-05-01T00:00:00Z",
        "partial": True,
        "realized": {"roc_auc": 0.8123},
        "realized_sampling_error": {"roc_auc": 0.0412},
    }
    assert chunk_label(chunk) == "3 [2023-04-01, 2023-05-01), partial"
    assert chunk_label({"chunk_index": 3}) == "3"
    assert realized_label(chunk) == "0.812 ±0.041"
    assert realized_label({"realized": {"roc_auc": None}}) == "-"
