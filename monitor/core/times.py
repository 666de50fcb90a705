"""Every time the monitor writes, in one format: UTC, RFC 3339, ending in `Z`.

Why one module: state, status, audit entries, Events, Lease MicroTimes and stored rows were
written three ways (`Z`, `+00:00`, with and without microseconds); text comparisons in SQL
and `lastTransitionTime` diffs need one spelling. `parse_time` reads all of them back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

Precision = Literal["auto", "seconds", "microseconds"]


def iso(moment: datetime, timespec: Precision = "auto") -> str:
    """`moment` in UTC as RFC 3339 with a `Z` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso() -> str:
    """Now, with microseconds: stored rows sort by this text, so its width never varies."""
    return iso(datetime.now(UTC), "microseconds")


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime: always six fractional digits."""
    return iso(moment, "microseconds")


def parse_time(value: Any) -> datetime | None:
    """A time written by `iso` (or with an offset, or naive = UTC); None if unset or unreadable."""
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
