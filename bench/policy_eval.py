"""Replay 2013 H2 offline and count rollbacks per policy: ours vs absolute and drift rules.

Reproduces docs/design.md's "Deciding" table with the shipped code: the releases of
`bentos.training.train` (good, retrain, no-key-features, january-only) are each released on several
dates; the rows served from that date on are scored by the release, cut into chunks of 500
and analysed by `monitor.analysis` with the known-good version scored in shadow on the same
rows (known-good = `good`; for `good` itself its equivalent `retrain`). Labels are assumed in
for every chunk (they lag 4 h, a chunk spans about a week). Each policy then says whether,
and after how many chunks, it would roll the release back:

- ours: `monitor.decision.decide` with the CRD defaults (gate, parity, rank, gaps; K guards);
- ours_without_gate: the same with the release gate waived, to show the live-evidence rules;
- absolute: estimated ROC AUC below the spec's absolute bound 0.70 for 2 consecutive chunks;
- nannyml_alert: NannyML's own CBPE alert (reference mean +/- 3 sd) on any chunk;
- input_drift: any univariate feature drift alert in 2 consecutive chunks;
- multivariate_drift: the PCA reconstruction-error alert in 2 consecutive chunks.

Run: `.venv/bin/python -m bench.policy_eval` (about a minute or two on 2 cores); writes
bench/results/policy_eval.json.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

import numpy as np
import pandas as pd

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, load_weather, time_split, weather_schema
from bentos.training.train import MODEL_NAME, RELEASES, TrainedRelease, train_release
from contract.registration import Registration
from contract.schema import ModelSchema
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.core.evidence import ChunkEvidence
from monitor.decision.decide import decide
from monitor.decision.policy import parse_policy
from monitor.decision.types import DecisionInput
from monitor.memory.state import KnownGood

RELEASE_NAMES = ("good", "retrain", "no-key-features", "january-only")
RELEASE_DATES = ("2013-07-01", "2013-08-01", "2013-09-01", "2013-10-01", "2013-11-01")
CHUNK = 500
HORIZON_CHUNKS = 12  # about three months of hourly rows at three stations
OUT = Path(__file__).resolve().parent / "results" / "policy_eval.json"
NOW = datetime(2014, 1, 1, tzinfo=UTC)


def registration(trained: TrainedRelease, schema: ModelSchema) -> Registration:
    own = schema.model_copy(update={"threshold": trained.threshold})
    ref = trained.reference.copy()
    ref[TIME_COLUMN] = ref[TIME_COLUMN].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = json.loads(ref.to_json(orient="records"))
    return Registration.model_validate(
        {
            "model": MODEL_NAME,
            "version": trained.version,
            "learner": "xgboost",
            "release": trained.release.name,
            "schema": json.loads(own.model_dump_json()),
            "metrics": trained.metrics,
            "feature_importance": trained.importance,
            "reference": rows,
            "artifact": base64.b64encode(bytes(trained.booster.save_raw("ubj"))).decode(),
        }
    )


def served_rows(
    replay: pd.DataFrame, schema: ModelSchema, start: str, live: FittedVersion
) -> pd.DataFrame:
    """What the release would have served and logged from `start` on."""
    valid = replay.loc[schema.valid_rows(replay)]
    rows = valid[valid[TIME_COLUMN] >= pd.Timestamp(start, tz="UTC")].sort_values(TIME_COLUMN)
    rows = rows.head(HORIZON_CHUNKS * CHUNK).reset_index(drop=True)
    frame = rows[schema.feature_names].copy()
    frame["probability"] = live.score(rows)
    frame["predicted_class"] = frame["probability"] >= live.registration.schema.threshold
    frame["label"] = rows[LABEL_COLUMN].to_numpy()
    frame["timestamp"] = rows[TIME_COLUMN].to_numpy()
    frame["seq"] = np.arange(1, len(frame) + 1)
    return frame


def first_run(flags: Sequence[bool], k: int) -> int | None:
    """1-based chunk count after which k consecutive flags were true, else None."""
    run = 0
    for i, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run >= k:
            return i + 1
    return None


def ours(
    chunks: list[ChunkEvidence],
    live: Registration,
    kg: Registration,
    revisions: Mapping[int, str | None],
    gate: bool = True,
) -> tuple[int | None, str | None]:
    policy = parse_policy({"model": MODEL_NAME, "targetRef": {"name": "predictor"}, "mode": "auto"})
    for n in range(len(chunks) + 1):
        decision = decide(
            DecisionInput(
                policy=policy,
                live_version=live.version,
                live_revision=2,
                revisions=revisions,
                evidence=chunks[:n],
                known_good=KnownGood(kg.version, 1),
                rejected={},
                now=NOW,
                live_holdout=live.metrics.get("reference"),
                known_good_holdout=kg.metrics.get("reference"),
                gate_waived=not gate,
            )
        )
        if decision.action in ("rollback", "reject-and-rollback"):
            return n, decision.trigger
        if decision.action == "promote-known-good":
            return None, None  # passed probation: known-good from here on
    return None, None


BASELINES: dict[str, Callable[[list[ChunkEvidence]], int | None]] = {
    "absolute": lambda cs: first_run(
        [
            (
                c.estimated.get("roc_auc") is not None
                and (c.estimated["roc_auc"].value or 1.0) < 0.70
            )
            for c in cs
        ],
        2,
    ),
    "nannyml_alert": lambda cs: first_run(
        [bool(c.estimated.get("roc_auc") and c.estimated["roc_auc"].alert) for c in cs], 1
    ),
    "input_drift": lambda cs: first_run([bool(c.drifted_features) for c in cs], 2),
    "multivariate_drift": lambda cs: first_run([c.multivariate_alert for c in cs], 2),
}


def main() -> dict[str, Any]:
    started = time.perf_counter()
    schema = weather_schema()
    split = time_split(load_weather(), schema)
    regs: dict[str, Registration] = {}
    fitted: dict[str, FittedVersion] = {}
    for name in RELEASE_NAMES:
        regs[name] = registration(train_release(RELEASES[name], split, schema), schema)
        fitted[name] = FittedVersion.fit(regs[name], CHUNK)
    runs: list[dict[str, Any]] = []
    for name in RELEASE_NAMES:
        kg_name = "retrain" if name == "good" else "good"
        for start in RELEASE_DATES:
            frame = served_rows(split.replay, schema, start, fitted[name])
            chunks = analyse_chunks(fitted[name], frame, 0, fitted[kg_name], chunk_size=CHUNK)
            chunks = [c for c in chunks if c.rows >= 300]
            revisions = {1: regs[kg_name].version, 2: regs[name].version}
            after, trigger = ours(chunks, regs[name], regs[kg_name], revisions)
            run: dict[str, Any] = {
                "release": name,
                "known_good": kg_name,
                "released": start,
                "chunks": len(chunks),
                "ours": {"after_chunks": after, "trigger": trigger},
            }
            after, trigger = ours(chunks, regs[name], regs[kg_name], revisions, gate=False)
            run["ours_without_gate"] = {"after_chunks": after, "trigger": trigger}
            for policy, rule in BASELINES.items():
                run[policy] = {"after_chunks": rule(chunks)}
            gaps = [
                (c.estimated["roc_auc"].value or 0) - (c.known_good_estimated["roc_auc"].value or 0)
                for c in chunks
                if c.estimated.get("roc_auc") and c.known_good_estimated.get("roc_auc")
            ]
            run["mean_estimated_gap"] = round(float(np.mean(gaps)), 4) if gaps else None
            runs.append(run)
            print(
                f"{name:16s} {start}  ours={run['ours']['after_chunks']}  live-rules={after} "
                f"({trigger})  " + "  ".join(f"{p}={run[p]['after_chunks']}" for p in BASELINES),
                flush=True,
            )
    policies = ["ours", "ours_without_gate", *BASELINES]
    table = {
        policy: {
            name: sum(
                1 for r in runs if r["release"] == name and r[policy]["after_chunks"] is not None
            )
            for name in RELEASE_NAMES
        }
        for policy in policies
    }
    result = {
        "what": "rollbacks per policy out of len(release_dates) releases of each model",
        "release_dates": list(RELEASE_DATES),
        "chunk_rows": CHUNK,
        "horizon_chunks": HORIZON_CHUNKS,
        "bad_releases": ["no-key-features", "january-only"],
        "rollbacks": table,
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(table, indent=2))
    return result


if __name__ == "__main__":
    main()
