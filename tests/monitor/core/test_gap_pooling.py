"""Pooling small chunks to a gap rule's minimum (`monitor.core.gap.pool`)."""

from __future__ import annotations

import pytest

from monitor.core.gap import ChunkGap, GapFilter, pool, same_rows_gap

KG = "v1"


def gap(index: int, rows: int, value: float, labelled: int = 0) -> ChunkGap:
    return ChunkGap(index, rows, labelled, KG, True, value, value if labelled else None)


def test_small_chunks_pool_until_the_minimum_and_the_rest_waits() -> None:
    chunks = [gap(0, 100, -0.1), gap(1, 100, 0.0), gap(2, 100, -0.2), gap(3, 500, 0.05)]
    chunks += [gap(4, 100, -0.9)]
    found = pool(chunks, "estimated", GapFilter(KG, min_rows=300))
    assert [f.chunk_indexes for f in found.figures] == [(0, 1, 2), (3,)]
    assert found.figures[0].gap == pytest.approx(-0.1) and found.figures[0].weight == 300
    assert (found.open_chunks, found.open_rows, found.rows_short) == ((4,), 100, 200)
    # The mean is the row-weighted one over the counted chunks; the waiting pool is out.
    summary = same_rows_gap(chunks, "estimated", GapFilter(KG, min_rows=300))
    assert summary.gap == pytest.approx((300 * -0.1 + 500 * 0.05) / 800)
    assert (summary.chunks, summary.rows) == (2, 800)


def test_a_realized_pool_needs_its_labelled_rows_too() -> None:
    chunks = [gap(i, 100, -0.05, labelled=30) for i in range(4)]
    found = pool(chunks, "realized", GapFilter(KG, min_rows=100, min_labelled_rows=100))
    assert [f.chunk_indexes for f in found.figures] == [(0, 1, 2, 3)]
    assert found.figures[0].weight == 120  # labelled rows weigh a realized gap
    shorter = pool(chunks[:3], "realized", GapFilter(KG, min_rows=100, min_labelled_rows=100))
    assert (shorter.figures, shorter.labelled_short) == ((), 10)


def test_chunks_of_another_baseline_never_join_a_pool() -> None:
    other = ChunkGap(1, 100, 0, "v0", True, -0.5, None)
    found = pool([gap(0, 100, 0.0), other, gap(2, 200, 0.0)], "estimated", GapFilter(KG, 300))
    assert [f.chunk_indexes for f in found.figures] == [(0, 2)]
