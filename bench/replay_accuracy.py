"""How good is the label-free estimate on the real 2013 replay? (offline: no servers)

Trains the releases in memory (bentos.training.train), replays July-December 2013 in time order in
chunks of 500 rows through the monitor's own analysis (monitor.analysis.analyse_chunks:
NannyML CBPE, shadow re-scoring with the known-good version), and compares every estimate
with the realized value on the same rows (all labels known offline):

- live estimate vs live realized ROC AUC, next to the naive guess "stays at the
  reference value";
- known-good shadow estimate vs the known-good version's realized ROC AUC on the same rows;
- cumulative estimated gap (live - known-good, row-weighted, since release) vs the
  cumulative realized gap;
- the lower threshold (reference ROC AUC - 0.15): which chunks it flags, against the chunks
  whose realized ROC AUC fell that far;
- levers tried for the 500-row MAE (calibration, reference, chunk size) and two floors:
  the error left if calibration held exactly (pure sampling noise), and an oracle that
  calibrates on the chunk's own labels.

Run: `.venv/bin/python bench/replay_accuracy.py` (about a minute). Writes
bench/results/replay_accuracy.json.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from nannyml.performance_estimation.confidence_based.metrics import estimate_roc_auc
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, load_weather, time_split, weather_schema
from bentos.training.train import RELEASES, TrainedRelease, train_release
from contract.registration import Registration
from contract.schema import ModelSchema
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.estimation import ROC_AUC_TOLERATED_DROP, roc_auc
from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import serving_gap

CHUNK = 500
RESULTS = Path(__file__).resolve().parent / "results" / "replay_accuracy.json"
# (live release, known-good release): the good model shadowed by an equivalent retrain,
# and worse releases shadowed by the good model.
SCENARIOS = [("good", "retrain"), ("no-key-features", "good"), ("january-only", "good")]


def registration_of(trained: TrainedRelease, schema: ModelSchema) -> Registration:
    """The payload the predictor would register, built without a BentoML store."""
    ref = trained.reference.copy()
    ref[TIME_COLUMN] = ref[TIME_COLUMN].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = ref.astype(object).where(ref.notna(), None).to_dict(orient="records")
    return Registration.model_validate(
        {
            "model": "rain_forecast",
            "version": trained.version,
            "release": trained.release.name,
            "schema": json.loads(
                schema.model_copy(update={"threshold": trained.threshold}).model_dump_json()
            ),
            "metrics": trained.metrics,
            "feature_importance": trained.importance,
            "reference": rows,
            "artifact": base64.b64encode(bytes(trained.booster.save_raw("ubj"))).decode(),
        }
    )


def replay_rows(
    split_replay: pd.DataFrame, schema: ModelSchema, live: FittedVersion
) -> pd.DataFrame:
    """Replay rows the predictor accepts, as the store would return them, served by `live`."""
    rows = split_replay[schema.valid_rows(split_replay)].reset_index(drop=True)
    frame = rows[schema.feature_names].copy()
    frame.insert(0, "seq", np.arange(1, len(rows) + 1))
    frame.insert(1, "timestamp", rows[TIME_COLUMN].to_numpy())
    frame["probability"] = live.score(frame).astype(float)
    frame["predicted_class"] = (frame["probability"] >= live.registration.schema.threshold).astype(
        int
    )
    frame["label"] = rows[LABEL_COLUMN].astype("Int64").to_numpy()
    return frame.iloc[: len(frame) // CHUNK * CHUNK]


def mae(a: list[float | None], b: list[float | None]) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return float(np.mean([abs(x - y) for x, y in pairs])) if pairs else None


def _diff(a: list[float | None], b: list[float | None]) -> list[float | None]:
    return [None if x is None or y is None else x - y for x, y in zip(a, b, strict=True)]


def _lag1(estimated: list[float | None], realized: list[float | None]) -> float | None:
    """Autocorrelation of the estimate's error from one chunk to the next (is it correctable?)."""
    res = np.array(
        [
            np.nan if e is None or r is None else r - e
            for e, r in zip(estimated, realized, strict=True)
        ]
    )
    res = res[np.isfinite(res)]
    return float(np.corrcoef(res[:-1], res[1:])[0, 1]) if len(res) > 3 else None


def scenario(live: FittedVersion, kg: FittedVersion, rows: pd.DataFrame) -> dict[str, Any]:
    started = time.perf_counter()
    chunks = analyse_chunks(live, rows, 0, kg, chunk_size=CHUNK)
    seconds = time.perf_counter() - started
    ref_auc = live.estimator.reference_realized["roc_auc"]
    table = []
    for k, ev in enumerate(chunks):
        upto: list[ChunkEvidence] = chunks[: k + 1]
        table.append(
            {
                "chunk": ev.chunk_index,
                "start": ev.start_time[:10],
                "estimated": ev.estimated["roc_auc"].value,
                "lower": ev.estimated["roc_auc"].lower,
                "alert": ev.estimated["roc_auc"].alert,
                "realized": ev.realized["roc_auc"],
                "naive": ref_auc,
                "kg_estimated": ev.known_good_estimated["roc_auc"].value,
                "kg_realized": ev.known_good_realized["roc_auc"],
                "rank_correlation": ev.rank_correlation,
                "rank_floor": ev.rank_correlation_floor,
                "cum_est_gap": serving_gap(upto, "estimated", CHUNK).gap,
                "cum_real_gap": serving_gap(upto, "realized", CHUNK).gap,
                "drifted": len(ev.drifted_features),
                "top_feature": ev.drift_ranking[0][0] if ev.drift_ranking else None,
            }
        )

    def col(name: str) -> list[Any]:
        return [row[name] for row in table]

    threshold = ev.estimated["roc_auc"].lower_threshold
    deep_drop = [
        r is not None and r < (ref_auc or 0) - ROC_AUC_TOLERATED_DROP for r in col("realized")
    ]
    alerts = col("alert")
    return {
        "live": live.registration.release,
        "known_good": kg.registration.release,
        "chunks": len(table),
        "analysis_seconds": round(seconds, 3),
        "reference_roc_auc": ref_auc,
        "lower_threshold": threshold,
        "mae": {
            "live_estimate": mae(col("estimated"), col("realized")),
            "naive_reference": mae(col("naive"), col("realized")),
            "known_good_estimate": mae(col("kg_estimated"), col("kg_realized")),
            "per_chunk_gap": mae(
                _diff(col("estimated"), col("kg_estimated")),
                _diff(col("realized"), col("kg_realized")),
            ),
            "cumulative_gap": mae(col("cum_est_gap"), col("cum_real_gap")),
        },
        "residual_lag1_autocorrelation": _lag1(col("estimated"), col("realized")),
        "threshold": {
            "alerts": int(sum(alerts)),
            "realized_drops": int(sum(deep_drop)),
            "alerts_on_drops": int(sum(a and d for a, d in zip(alerts, deep_drop, strict=True))),
        },
        "final_cumulative_gap": {
            "estimated": table[-1]["cum_est_gap"],
            "realized": table[-1]["cum_real_gap"],
        },
        "table": table,
    }


def levers(live: FittedVersion, rows: pd.DataFrame) -> dict[str, float | None]:
    """ROC AUC MAE of estimate variants on the same 500-row chunks (NannyML's estimator)."""
    ref = live.reference
    ref_p, ref_y = ref["probability"].to_numpy(float), ref["label"].to_numpy(int)
    p = rows["probability"].to_numpy(float)
    y = rows["label"].to_numpy(float)
    n = len(rows) // CHUNK

    def logit(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 1e-6, 1 - 1e-6)
        return np.log(x / (1 - x))

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(ref_p, ref_y)
    platt = LogisticRegression(C=1e6).fit(logit(ref_p)[:, None], ref_y)

    def realized(sl: slice) -> float | None:
        yy = y[sl]
        return roc_auc(yy.astype(int), p[sl]) if 0 < yy.sum() < len(yy) else None

    def run(calibrate: Any, size: int = CHUNK, recent: int = 0) -> float | None:
        errors = []
        for i in range(len(rows) // size):
            sl = slice(i * size, (i + 1) * size)
            truth = realized(sl)
            if truth is None:
                continue
            cal = calibrate
            if recent and i:
                lo = max(0, i * size - recent)
                xs = np.r_[ref_p, p[lo : i * size]]
                ys = np.r_[ref_y, y[lo : i * size]]
                cal = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(xs, ys).predict
            errors.append(abs(estimate_roc_auc(cal(p[sl]), p[sl]) - truth))
        return float(np.mean(errors)) if errors else None

    rng = np.random.default_rng(0)
    sampling, oracle = [], []
    for i in range(n):
        sl = slice(i * CHUNK, (i + 1) * CHUNK)
        if realized(sl) is None:
            continue
        calibrated = iso.predict(p[sl])
        est = estimate_roc_auc(calibrated, p[sl])
        draws = []
        for _ in range(100):
            fake = (rng.random(CHUNK) < calibrated).astype(int)
            if 0 < fake.sum() < CHUNK:
                draws.append(abs(roc_auc(fake, p[sl]) - est))
        sampling.append(float(np.mean(draws)))
        own = IsotonicRegression(out_of_bounds="clip").fit(p[sl], y[sl]).predict(p[sl])
        oracle.append(abs(estimate_roc_auc(own, p[sl]) - (realized(sl) or 0)))
    return {
        "isotonic_on_reference (NannyML CBPE default, shipped)": run(iso.predict),
        "no_calibration": run(lambda x: x),
        "platt_on_reference": run(lambda x: platt.predict_proba(logit(x)[:, None])[:, 1]),
        "isotonic_on_reference_plus_last_1000_labelled_live_rows": run(iso.predict, recent=1000),
        "isotonic_on_reference_plus_last_4000_labelled_live_rows": run(iso.predict, recent=4000),
        "chunks_of_1000_rows": run(iso.predict, size=1000),
        "chunks_of_2000_rows": run(iso.predict, size=2000),
        "floor_pure_sampling_noise_if_calibration_held": float(np.mean(sampling)),
        "floor_oracle_calibrated_on_the_chunk_own_labels": float(np.mean(oracle)),
    }


def fmt(value: Any) -> str:
    if value is None:
        return "   -  "
    if isinstance(value, bool):
        return "ALERT" if value else ""
    if isinstance(value, float):
        return f"{value:+.3f}" if value < 0 else f"{value:.3f}"
    return str(value)


def print_scenario(res: dict[str, Any]) -> None:
    print(
        f"\n== live {res['live']} / known-good {res['known_good']}:"
        f" {res['chunks']} chunks of {CHUNK}"
    )
    cols = [
        "chunk",
        "start",
        "estimated",
        "alert",
        "realized",
        "kg_estimated",
        "kg_realized",
        "rank_correlation",
        "cum_est_gap",
        "cum_real_gap",
        "drifted",
        "top_feature",
    ]
    print(" ".join(f"{c[:12]:>12}" for c in cols))
    for row in res["table"]:
        print(" ".join(f"{fmt(row[c]):>12}" for c in cols))
    m = res["mae"]
    print(
        f"MAE live estimate {fmt(m['live_estimate'])}"
        f" (naive 'stays at reference' {fmt(m['naive_reference'])});"
        f" known-good shadow {fmt(m['known_good_estimate'])};"
        f" per-chunk gap {fmt(m['per_chunk_gap'])};"
        f" cumulative gap {fmt(m['cumulative_gap'])}; error lag-1 autocorrelation"
        f" {fmt(res['residual_lag1_autocorrelation'])}"
    )
    t = res["threshold"]
    print(
        f"lower threshold {fmt(res['lower_threshold'])}: {t['alerts']} alerts,"
        f" {t['alerts_on_drops']} of them on"
        f" the {t['realized_drops']} chunks whose realized AUC fell > {ROC_AUC_TOLERATED_DROP}"
    )


def main() -> None:
    schema = weather_schema()
    split = time_split(load_weather(), schema)
    names = sorted({n for pair in SCENARIOS for n in pair})
    fitted = {}
    for name in names:
        trained = train_release(RELEASES[name], split, schema)
        started = time.perf_counter()
        fitted[name] = FittedVersion.fit(registration_of(trained, schema), CHUNK)
        print(f"trained {name}; monitor fit {time.perf_counter() - started:.2f} s")
    results = []
    for live_name, kg_name in SCENARIOS:
        rows = replay_rows(split.replay, schema, fitted[live_name])
        res = scenario(fitted[live_name], fitted[kg_name], rows)
        print_scenario(res)
        results.append(res)
    good_rows = replay_rows(split.replay, schema, fitted["good"])
    lever_mae = levers(fitted["good"], good_rows)
    print("\n== levers for the good model's 500-row ROC AUC MAE")
    for name, value in lever_mae.items():
        print(f"{fmt(value):>8}  {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"chunk_size": CHUNK, "scenarios": results, "levers": lever_mae}, indent=1)
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
