"""Candidates on the 2013 replay: how soon, and how right, is each shipped release's verdict?

The good model serves from each of the design's five release dates (1st of Jul..Nov); each
other shipped release (retrain, no-key-features, january-only) is a candidate scored on the
good model's chunks of 500 rows with the monitor's own code: `monitor.analysis.chunks`
analyses the serving chunks, `monitor.analysis.candidates.score_chunk` scores a candidate on
the same rows, `monitor.decision.candidates.judge` gives the verdict with the CRD's default
`candidatePolicy`. After each chunk the verdict is recomputed, twice: label-free (labels
withheld: the estimated gap decides) and with the labels in (they lag 4 h here, a chunk spans
about a week). Right: retrain -> Equivalent, the two bad releases -> Worse.

Cost: CPU seconds (process time) per chunk of the analysis alone and of scoring 1 and 3
candidates on top, measured in the same run.

Run: `make bench-candidates` (`.venv/bin/python -m bench.candidates_bench`, about two minutes
on 2 cores); writes bench/results/candidates.json.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

import pandas as pd

from bench.policy_eval import CHUNK, RELEASE_DATES, registration, served_rows
from bentos.training.data import load_weather, time_split, weather_schema
from bentos.training.train import RELEASES, train_release
from monitor.analysis.candidates import score_chunk
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.decision.candidates import judge
from monitor.decision.policy import CandidatePolicy
from monitor.memory.candidates import CandidateChunk

CANDIDATES = {"retrain": "Equivalent", "no-key-features": "Worse", "january-only": "Worse"}
OUT = Path(__file__).resolve().parent / "results" / "candidates.json"


def unlabelled(chunk: CandidateChunk) -> CandidateChunk:
    return replace(chunk, labelled_rows=0, candidate_realized=None, baseline_realized=None)


def first_decisive(verdicts: list[str]) -> tuple[int | None, str | None]:
    """(chunks, verdict) of the first verdict that is not Inconclusive."""
    for n, verdict in enumerate(verdicts, start=1):
        if verdict != "Inconclusive":
            return n, verdict
    return None, None


def main() -> dict[str, Any]:
    started = time.perf_counter()
    schema = weather_schema()
    split = time_split(load_weather(), schema)
    fitted: dict[str, FittedVersion] = {}
    for name in ("good", *CANDIDATES):
        fitted[name] = FittedVersion.fit(
            registration(train_release(RELEASES[name], split, schema), schema), CHUNK
        )
    policy = CandidatePolicy()
    runs: list[dict[str, Any]] = []
    analysis_cpu, n_chunks = 0.0, 0
    scoring_cpu = dict.fromkeys(CANDIDATES, 0.0)
    for start in RELEASE_DATES:
        frame = served_rows(split.replay, schema, start, fitted["good"])
        cpu = time.process_time()
        chunks = analyse_chunks(fitted["good"], frame, 0, None, chunk_size=CHUNK)
        analysis_cpu += time.process_time() - cpu
        chunks = [c for c in chunks if c.rows >= 300]
        n_chunks += len(chunks)
        for name, expected in CANDIDATES.items():
            scored: list[CandidateChunk] = []
            cpu = time.process_time()
            for chunk in chunks:
                rows = frame[(frame["seq"] >= chunk.first_seq) & (frame["seq"] <= chunk.last_seq)]
                scored.append(
                    score_chunk(fitted[name], rows.reset_index(drop=True), chunk, "good", start)
                )
            scoring_cpu[name] += time.process_time() - cpu
            free = [
                judge(name, [unlabelled(c) for c in scored[:n]], policy)
                for n in range(1, len(scored) + 1)
            ]
            labelled = [judge(name, scored[:n], policy) for n in range(1, len(scored) + 1)]
            free_at, free_verdict = first_decisive([v.verdict for v in free])
            lab_at, lab_verdict = first_decisive([v.verdict for v in labelled])
            final = free[-1]
            run: dict[str, Any] = {
                "candidate": name,
                "released": start,
                "expected": expected,
                "chunks": len(scored),
                "label_free": {
                    "first_verdict": free_verdict,
                    "after_chunks": free_at,
                    "after_rows": sum(c.rows for c in scored[:free_at]) if free_at else None,
                    "sequence": [v.verdict for v in free],
                    "final_gap": _r(final.estimated.gap),
                    "final_band": [_r(final.estimated.lower), _r(final.estimated.upper)],
                    "right": free_verdict == expected,
                    "ever_wrong": any(v.verdict not in ("Inconclusive", expected) for v in free),
                },
                "with_labels": {
                    "first_verdict": lab_verdict,
                    "after_chunks": lab_at,
                    "sequence": [v.verdict for v in labelled],
                    "final_realized_gap": _r(labelled[-1].realized.gap),
                    "right": lab_verdict == expected,
                    "ever_wrong": any(
                        v.verdict not in ("Inconclusive", expected) for v in labelled
                    ),
                },
            }
            runs.append(run)
            print(
                f"{start} {name:16s} label-free: {free_verdict} after {free_at} "
                f"(gap {run['label_free']['final_gap']}); "
                f"with labels: {lab_verdict} after {lab_at}",
                flush=True,
            )
    per_chunk = analysis_cpu / max(n_chunks, 1)
    scoring = {k: v / max(n_chunks, 1) for k, v in scoring_cpu.items()}
    one = scoring["retrain"]
    three = sum(scoring.values())
    result = {
        "command": "make bench-candidates",
        "chunk_rows": CHUNK,
        "policy": policy.__dict__,
        "runs": runs,
        "summary": {
            mode: {
                name: {
                    "right": sum(1 for r in runs if r["candidate"] == name and r[mode]["right"]),
                    "ever_wrong": sum(
                        1 for r in runs if r["candidate"] == name and r[mode]["ever_wrong"]
                    ),
                    "max_chunks_to_verdict": max(
                        (r[mode]["after_chunks"] or 99 for r in runs if r["candidate"] == name),
                        default=None,
                    ),
                    "dates": sum(1 for r in runs if r["candidate"] == name),
                }
                for name in CANDIDATES
            }
            for mode in ("label_free", "with_labels")
        },
        "cpu_seconds_per_chunk": {
            "analysis_only": round(per_chunk, 4),
            "one_candidate": round(per_chunk + one, 4),
            "three_candidates": round(per_chunk + three, 4),
            "ratio_one_vs_none": round((per_chunk + one) / per_chunk, 3),
            "ratio_three_vs_none": round((per_chunk + three) / per_chunk, 3),
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(json.dumps(result["cpu_seconds_per_chunk"], indent=2))
    return result


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


if __name__ == "__main__":
    pd.options.mode.copy_on_write = True
    main()
