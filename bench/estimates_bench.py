"""Do the estimate's intervals hold, and how good is the nowcast? (2013 replay, offline)

Trains the releases in memory and replays July-December 2013 in time order through the
monitor's own analysis (`analyse_chunks`, as bench/replay_accuracy.py does), one chunk at a
time the way the cycle sees it: at a chunk's close, labels have arrived for rows older than
`LABEL_DELAY` (4 h), so the chunk is analysed with those labels only (its nowcast). Its
re-analysis with every label (before the next chunk closes) puts its residual into the
calibration of the chunks after it. Per chunk size 250 / 500 / 1,000 / 2,000 and per
scenario (the good model live with the retrain as known-good, and the retrain live with
good as known-good), it reports for ROC AUC:

- coverage of the calibrated interval at the stated level (90%) and its mean width;
- the same for NannyML's stock band (+-3 sampling errors);
- MAE of the label-free estimate, and of the nowcast at chunk close.

Run: `make bench-estimates` (a few minutes). Writes bench/results/estimates.json.
"""

from __future__ import annotations

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

from bench.replay_accuracy import registration_of, replay_rows
from bentos.training.data import load_weather, time_split, weather_schema
from bentos.training.train import RELEASES, train_release
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.core.evidence import ChunkEvidence

SIZES = (250, 500, 1000, 2000)
LEVEL = 0.9
LABEL_DELAY = pd.Timedelta(hours=4)
SCENARIOS = [("good", "retrain"), ("retrain", "good")]
RESULTS = Path(__file__).resolve().parent / "results" / "estimates.json"
TARGETS = {"coverage": (0.85, 0.95), "width_ratio_max": 2.5, "nowcast_mae_max": 0.02}


def replay(live: FittedVersion, kg: FittedVersion, rows: pd.DataFrame, size: int) -> list[dict]:
    """Per chunk: the estimate as issued at close, the nowcast at close, the realized value."""
    rows = rows.iloc[: len(rows) // size * size].reset_index(drop=True)
    out = []
    for i in range(len(rows) // size):
        chunk = rows.iloc[i * size : (i + 1) * size].copy()
        truth = chunk["label"].copy()
        close = pd.to_datetime(chunk["timestamp"], utc=True).max()
        late = pd.to_datetime(chunk["timestamp"], utc=True) > close - LABEL_DELAY
        chunk["label"] = chunk["label"].mask(late.to_numpy())
        ev: ChunkEvidence = analyse_chunks(live, chunk, i, kg, chunk_size=size)[0]
        # Re-analysed once every label is in (before the next chunk closes: a chunk spans
        # days, the delay is 4 h): its residual joins the calibration of later chunks.
        full = analyse_chunks(live, chunk.assign(label=truth), i, kg, chunk_size=size)[0]
        est, now = ev.estimated["roc_auc"], ev.nowcast.get("roc_auc")
        out.append(
            {
                "chunk": i,
                "start": ev.start_time[:10],
                "estimate": est.value,
                "interval": [est.interval_lower, est.interval_upper],
                "band": [est.lower, est.upper],
                "nowcast": None if now is None else now.value,
                "nowcast_interval": None
                if now is None
                else [now.interval_lower, now.interval_upper],
                "labelled_at_close": float(1 - late.mean()),
                "realized": full.realized["roc_auc"],
            }
        )
    return out


def summary(table: list[dict]) -> dict[str, Any]:
    rows = [r for r in table if r["realized"] is not None and r["estimate"] is not None]

    def inside(r: dict, key: str) -> bool | None:
        lo, hi = r[key] if r[key] else (None, None)
        return None if lo is None or hi is None else bool(lo <= r["realized"] <= hi)

    def share(key: str) -> float | None:
        flags = [f for f in (inside(r, key) for r in rows) if f is not None]
        return float(np.mean(flags)) if flags else None

    def width(key: str) -> float | None:
        ws = [r[key][1] - r[key][0] for r in rows if r[key] and r[key][0] is not None]
        return float(np.mean(ws)) if ws else None

    iv, band = width("interval"), width("band")
    now = [abs(r["nowcast"] - r["realized"]) for r in rows if r["nowcast"] is not None]
    return {
        "chunks": len(rows),
        "chunks_with_interval": sum(1 for r in rows if inside(r, "interval") is not None),
        "interval_coverage": share("interval"),
        "interval_mean_width": iv,
        "stock_band_coverage": share("band"),
        "stock_band_mean_width": band,
        "width_ratio": None if iv is None or not band else iv / band,
        "estimate_mae": float(np.mean([abs(r["estimate"] - r["realized"]) for r in rows])),
        "nowcast_mae_at_close": float(np.mean(now)) if now else None,
        "nowcast_interval_coverage": share("nowcast_interval"),
        "labelled_share_at_close": float(np.mean([r["labelled_at_close"] for r in rows])),
    }


def main() -> None:
    schema = weather_schema()
    split = time_split(load_weather(), schema)
    trained = {n: train_release(RELEASES[n], split, schema) for n in ("good", "retrain")}
    regs = {n: registration_of(t, schema) for n, t in trained.items()}
    results = []
    for size in SIZES:
        fitted = {n: FittedVersion.fit(r, size, LEVEL) for n, r in regs.items()}
        for live_name, kg_name in SCENARIOS:
            started = time.perf_counter()
            # A fresh fit per scenario: the calibration starts from the reference alone.
            live = FittedVersion.fit(regs[live_name], size, LEVEL)
            rows = replay_rows(split.replay, schema, live)
            table = replay(live, fitted[kg_name], rows, size)
            res = {"chunk_size": size, "live": live_name, "known_good": kg_name}
            res |= summary(table) | {"seconds": round(time.perf_counter() - started, 1)}
            print(json.dumps({k: v for k, v in res.items() if k != "table"}))
            results.append(res | {"table": table})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "level": LEVEL,
                "label_delay_hours": LABEL_DELAY.total_seconds() / 3600,
                "targets": TARGETS,
                "runs": results,
            },
            indent=1,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
