"""Test support for the operator: ChunkEvidence factories and a Kubernetes API emulator.

The emulator is kmock's `KubernetesEmulator` served over real HTTP on loopback, run in a
background thread with its own event loop so that the synchronous official `kubernetes`
client (what the monitor uses) can talk to it from ordinary tests. kmock has gaps
(DESIGN.md): no resourceVersion, no 409 on stale writes, no PUT, label selectors ignored,
no Deployment controller. This module closes the two the operator depends on:
`resourceVersion` is bumped on every write and a failed JSON-patch `test` op answers 422
like a real API server; `simulate_controller` does what the Deployment controller would
after a rollout (bump the matching ReplicaSet's revision).
"""

from __future__ import annotations

from monitor.evidence import ChunkEvidence, Estimate, FeatureDrift

MODEL = "rain_forecast"


def chunk(
    version: str,
    index: int,
    *,
    rows: int = 500,
    estimated: float | None = 0.85,
    known_good_estimated: float | None = 0.85,
    known_good_version: str | None = "good-1",
    same_learner: bool | None = True,
    parity: float | None = 0.0,
    rank: float | None = 0.95,
    rank_floor: float | None = 0.80,
    realized: float | None = None,
    known_good_realized: float | None = None,
    labelled_rows: int = 0,
    drifted: tuple[str, ...] = (),
    model: str = MODEL,
) -> ChunkEvidence:
    """One chunk of evidence with healthy defaults; override the field a scenario is about."""
    return ChunkEvidence(
        model=model,
        version=version,
        chunk_index=index,
        rows=rows,
        first_seq=index * rows + 1,
        last_seq=(index + 1) * rows,
        start_time=f"2013-07-{index + 1:02d}T00:00:00+00:00",
        end_time=f"2013-07-{index + 1:02d}T23:00:00+00:00",
        estimated={}
        if estimated is None
        else {"roc_auc": Estimate(estimated, estimated - 0.05, estimated + 0.05)},
        realized={} if realized is None else {"roc_auc": realized},
        labelled_rows=labelled_rows,
        drift=[FeatureDrift(f, "jensen_shannon", 0.3, 0.1, True) for f in drifted],
        parity_violation_ratio=parity,
        known_good_version=known_good_version,
        same_learner=same_learner,
        rank_correlation=rank,
        rank_correlation_floor=rank_floor,
        known_good_estimated={}
        if known_good_estimated is None
        else {"roc_auc": Estimate(known_good_estimated)},
        known_good_realized={} if known_good_realized is None else {"roc_auc": known_good_realized},
    )
