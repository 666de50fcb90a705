"""Score candidates on the baseline's chunks: the same logged inputs, another artifact.

Why here: a candidate never serves, so it has no rows of its own. Every complete chunk of
the baseline (the known-good version, or the serving one before any is known) is re-scored
with each candidate's own booster; its CBPE (fitted on its own reference) estimates its
ROC AUC on those rows, next to the baseline's estimate already in the chunk's evidence --
a same-rows comparison that cancels world drift, as the shadow comparison of a serving
release does (docs/design.md, "Deciding"). Realized figures follow once the chunk's labels
arrive. The verdict itself is the decision's (`monitor/decision/candidates.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from monitor.analysis.chunks import FittedVersion
from monitor.analysis.estimation import LABEL, PROBA, realized_metrics
from monitor.analysis.ports import AnalysisStore, VersionView
from monitor.analysis.shadow import rank_correlation
from monitor.core.evidence import ChunkEvidence
from monitor.core.times import now_iso, parse_time
from monitor.memory.candidates import CandidateChunk, CandidateState
from monitor.memory.state import OperatorState

log = logging.getLogger(__name__)

METRIC = "roc_auc"
# A category the candidate's reference shows this often and the live rows never: the
# candidate was trained for traffic this model does not get.
CATEGORY_SHARE = 0.05
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Versions(Protocol):
    """What the scoring needs of the cycle's `VersionCache`."""

    def get(self, model: str, version: str, chunk_size: int | None = None) -> FittedVersion: ...


def baseline_version(
    store: AnalysisStore, model: str, versions: Sequence[VersionView], candidates: set[str]
) -> str | None:
    """The version whose rows candidates are scored on: the recorded known-good one while
    it has records, else the latest registered non-candidate version with records
    (`versions`: the store's `VersionInfo`s of the model)."""
    recorded = OperatorState(store).known_good(model)
    infos = [i for i in versions if i.registered_at and i.records > 0]
    if recorded is not None and recorded.version in {i.version for i in infos}:
        return recorded.version
    serving = sorted(
        (i for i in infos if i.version not in candidates), key=lambda i: str(i.registered_at)
    )
    return serving[-1].version if serving else None


def score_candidates(
    store: AnalysisStore, cache: Versions, model: str, versions: Sequence[VersionView]
) -> dict[str, list[CandidateChunk]]:
    """Score every declared, registered candidate of `model` on the baseline chunks it has
    not scored yet (the newest `backfill` ones when it is new) and on those whose labels
    grew since; store and return what was scored, per candidate. `versions`: the model's
    `VersionInfo`s, as the cycle read them."""
    state = CandidateState(store)
    entries = state.entries(model)
    if not entries:
        return {}
    registered = {i.version for i in versions if i.registered_at}
    baseline = baseline_version(store, model, versions, set(entries))
    if baseline is None:
        return {}
    base_chunks = sorted(store.chunks(model, baseline), key=lambda c: c.chunk_index)
    if not base_chunks:
        return {}
    backfill = state.backfill_chunks(model)
    out: dict[str, list[CandidateChunk]] = {}
    for version, entry in sorted(entries.items()):
        if version not in registered or version == baseline:
            continue
        have = {
            c.chunk_index: c for c in state.chunks(model, version) if c.baseline_version == baseline
        }
        todo = _due(base_chunks, have, entry.added_at, backfill)
        if not todo:
            continue
        try:
            scored = _score(store, cache, model, baseline, version, todo)
        except Exception:
            log.exception("scoring candidate %s:%s on %s failed", model, version, baseline)
            continue
        state.save_chunks(model, version, scored)
        out[version] = scored
    return out


def _due(
    base_chunks: list[ChunkEvidence],
    have: dict[int, CandidateChunk],
    added_at: str,
    backfill: int,
) -> list[ChunkEvidence]:
    """Baseline chunks to (re)score: analysed since the candidate was added (plus the newest
    `backfill` before that), and scored ones whose labelled rows grew or whose rows
    changed (a re-analysed period)."""
    added = parse_time(added_at) or EPOCH
    after = [(parse_time(c.analysed_at) or EPOCH) >= added for c in base_chunks]
    before = [c.chunk_index for c, later in zip(base_chunks, after, strict=True) if not later]
    window = set(before[-backfill:]) if backfill > 0 else set()
    due = []
    for chunk, later in zip(base_chunks, after, strict=True):
        old = have.get(chunk.chunk_index)
        if old is None:
            if later or chunk.chunk_index in window:
                due.append(chunk)
        elif chunk.labelled_rows > old.labelled_rows or chunk.rows != old.rows:
            due.append(chunk)
    return due


def _score(
    store: AnalysisStore,
    cache: Versions,
    model: str,
    baseline: str,
    version: str,
    chunks: list[ChunkEvidence],
) -> list[CandidateChunk]:
    # Fitted for the baseline's chunk size: the size its CBPE reference chunks assume.
    chunking = OperatorState(store).chunking(model, baseline)
    size = (chunking.basis_rows if chunking else None) or max(c.rows for c in chunks)
    by_rows = chunking is None or chunking.mode == "rows"
    candidate = cache.get(model, version, size)
    now = now_iso()
    out = []
    for run in _runs(chunks):
        # By rows a chunk is exactly its version's records in its sequence range; by period
        # the range may hold records of other periods, which its event times tell apart.
        limit = sum(c.rows for c in run) if by_rows else None
        span = store.records_frame(model, baseline, after_seq=run[0].first_seq - 1, limit=limit)
        for chunk in run:
            rows = span[(span["seq"] >= chunk.first_seq) & (span["seq"] <= chunk.last_seq)]
            if not by_rows and chunk.start_time and chunk.end_time and "event_time" in rows:
                start, end = pd.Timestamp(chunk.start_time), pd.Timestamp(chunk.end_time)
                rows = rows[(rows["event_time"] >= start) & (rows["event_time"] <= end)]
            out.append(score_chunk(candidate, rows.reset_index(drop=True), chunk, baseline, now))
    return out


def _runs(chunks: list[ChunkEvidence]) -> list[list[ChunkEvidence]]:
    """Consecutive chunk indexes together: one read per run, not one per chunk nor one from
    the oldest due chunk to the newest."""
    runs: list[list[ChunkEvidence]] = []
    for chunk in chunks:
        if runs and chunk.chunk_index == runs[-1][-1].chunk_index + 1:
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    return runs


def score_chunk(
    candidate: FittedVersion,
    rows: pd.DataFrame,
    chunk: ChunkEvidence,
    baseline: str,
    now: str = "",
) -> CandidateChunk:
    """One baseline chunk (its evidence and its logged rows) scored by `candidate`."""
    missing = tuple(n for n in candidate.registration.schema.feature_names if n not in rows)
    base_est = chunk.estimated.get(METRIC)
    labels = pd.to_numeric(rows[LABEL], errors="coerce") if LABEL in rows else None
    common: dict[str, Any] = {
        "chunk_index": chunk.chunk_index,
        "baseline_version": baseline,
        "rows": len(rows),
        "first_seq": chunk.first_seq,
        "last_seq": chunk.last_seq,
        "baseline_estimate": base_est.value if base_est else None,
        "baseline_sampling_error": base_est.sampling_error if base_est else None,
        "labelled_rows": int(labels.notna().sum()) if labels is not None else 0,
        # On the rows' labels as they are now, like the candidate's (ROC AUC ignores the
        # threshold): the same labelled rows on both sides.
        "baseline_realized": _roc_auc(rows, labels),
        "start_time": chunk.start_time,
        "end_time": chunk.end_time,
        "analysed_at": now or now_iso(),
    }
    if missing or rows.empty:
        return CandidateChunk(
            **common,
            candidate_estimate=None,
            candidate_sampling_error=None,
            rank_correlation=None,
            missing_features=missing,
        )
    scores = candidate.score(rows)
    estimate = candidate.estimator.estimate(scores, np.zeros(len(rows), dtype=np.int64))
    est = estimate.get(0, {}).get(METRIC)
    return CandidateChunk(
        **common,
        candidate_estimate=est.value if est else None,
        candidate_sampling_error=est.sampling_error if est else None,
        rank_correlation=rank_correlation(rows[PROBA].to_numpy(dtype=float), scores.astype(float)),
        candidate_realized=_roc_auc(rows.assign(**{PROBA: scores.astype(float)}), labels),
        unseen_categories=_unseen(candidate, rows),
    )


def _roc_auc(rows: pd.DataFrame, labels: pd.Series | None) -> float | None:
    if labels is None:
        return None
    return realized_metrics(rows.assign(**{LABEL: labels}), 0.5).get(METRIC)


def _unseen(candidate: FittedVersion, rows: pd.DataFrame) -> dict[str, list[str]]:
    """Per category feature, the categories common in the candidate's reference that these
    rows never show."""
    found: dict[str, list[str]] = {}
    reference = candidate.reference
    for feature in candidate.registration.schema.features:
        if feature.dtype != "category" or feature.name not in reference:
            continue
        shares = reference[feature.name].astype(str).value_counts(normalize=True)
        seen = set(rows[feature.name].dropna().astype(str)) if feature.name in rows else set()
        common = [str(c) for c, share in shares.items() if share >= CATEGORY_SHARE]
        unseen = sorted(c for c in common if c not in seen)
        if unseen:
            found[feature.name] = unseen
    return found
