"""Who knows what, when: the label-delay benchmark's accounting of event time (pure numpy).

Rows arrive in event-time order and are cut into chunks of consecutive rows. A chunk's
estimate is issued when it closes (its newest row's time). A row's label arrives `delay`
after the row's own time, so at a moment `at` the labelled rows are those with
`time + delay <= at`. A chunk is *fully labelled* at `at` when all its rows are, i.e. when
`close + delay <= at`; a chunk whose labels are not yet in at the time of its own estimate
is one the label-free estimate is judged on. Persistence reads the realized value of the
newest fully labelled chunk at that moment. Kept apart from the methods so a unit test can
hold this accounting right on a tiny timeline (tests/bench/test_label_delay.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timeline:
    """Row times (ns since epoch, non-decreasing), cut into chunks of `size` rows."""

    times: np.ndarray
    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if np.any(np.diff(self.times) < 0):
            raise ValueError("times must be in non-decreasing event-time order")

    @property
    def chunks(self) -> int:
        """Whole chunks only: a trailing partial chunk never closes."""
        return len(self.times) // self.size

    def rows(self, chunk: int) -> slice:
        return slice(chunk * self.size, (chunk + 1) * self.size)

    def close(self, chunk: int) -> int:
        """The chunk's close: its newest row's time, when its estimate is issued."""
        return int(self.times[(chunk + 1) * self.size - 1])

    def labelled_rows(self, delay: int, at: int) -> int:
        """How many rows (a prefix: times are ordered) have their label at `at`."""
        return int(np.searchsorted(self.times, at - delay, side="right"))

    def labelled_share(self, chunk: int, delay: int, at: int) -> float:
        sl = self.rows(chunk)
        known = min(max(self.labelled_rows(delay, at) - sl.start, 0), self.size)
        return known / self.size

    def fully_labelled(self, chunk: int, delay: int, at: int) -> bool:
        return self.close(chunk) + delay <= at

    def pending(self, chunk: int, delay: int) -> bool:
        """Are the chunk's labels not yet all in when its own estimate is issued?"""
        return not self.fully_labelled(chunk, delay, self.close(chunk))

    def newest_labelled(self, delay: int, at: int) -> int | None:
        """The newest chunk fully labelled at `at` (what persistence reads), or None."""
        closes = self.times[self.size - 1 : self.chunks * self.size : self.size]
        n = int(np.searchsorted(closes, at - delay, side="right"))
        return n - 1 if n else None


__all__ = ["Timeline"]
