"""ModelMonitor spec -> Policy: measured defaults, string thresholds, bad specs named clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.decision.policy import Bounds, PolicyError, parse_duration, parse_policy, resolve
from monitor.memory.state import ChunkingStatus


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "model": "churn",
        "targetRef": {"kind": "Deployment", "name": "predictor"},
        **extra,
    }


def test_minimal_spec_gets_the_measured_defaults() -> None:
    policy = parse_policy(spec())
    assert policy.mode == "dryRun"
    assert (policy.chunk_size, policy.min_rows_per_chunk, policy.probation_chunks) == (500, 300, 6)
    assert policy.cooldown == timedelta(minutes=30)
    assert policy.rollback_on_world_drift is False
    assert policy.gate_max_shortfall == pytest.approx(0.02)
    assert (policy.parity_max_violation_ratio, policy.parity_chunks) == (0.01, 1)
    assert (policy.rank_sigmas, policy.rank_chunks) == (3.0, 3)
    assert (policy.estimated_gap_min, policy.estimated_gap_chunks) == (-0.03, 2)
    assert policy.estimated_gap_same_learner_only is True
    assert (policy.realized_gap_min, policy.realized_gap_chunks) == (-0.05, 2)
    assert policy.realized_gap_min_labelled_rows == 200
    assert policy.estimated_bounds == {"roc_auc": Bounds(lower=0.70)}


def test_string_thresholds_are_parsed_exactly() -> None:
    policy = parse_policy(
        spec(
            mode="auto",
            cooldown="1h30m",
            releaseGate={"metric": "roc_auc", "maxShortfall": "0.1"},
            rollbackRules={
                "estimatedGap": {"min": "-0.045", "consecutiveChunks": 3},
                "realizedGap": {"min": "-0.1", "minLabelledRows": 50},
            },
            thresholds={"estimated": {"roc_auc": {"lower": "0.65", "upper": "1"}}},
        )
    )
    assert policy.mode == "auto"
    assert policy.cooldown == timedelta(hours=1, minutes=30)
    assert policy.gate_max_shortfall == 0.1
    assert (policy.estimated_gap_min, policy.estimated_gap_chunks) == (-0.045, 3)
    assert (policy.realized_gap_min, policy.realized_gap_min_labelled_rows) == (-0.1, 50)
    assert policy.estimated_bounds == {"roc_auc": Bounds(lower=0.65, upper=1.0)}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"model": "Rain Forecast"}, "spec.model"),
        ({"targetRef": {"kind": "StatefulSet", "name": "x"}}, "spec.targetRef.kind"),
        ({"targetRef": {}}, "spec.targetRef.name"),
        ({"mode": "yolo"}, "spec.mode"),
        ({"chunkSize": 10}, "spec.chunkSize"),
        ({"chunkSize": "500"}, "spec.chunkSize"),
        ({"probationChunks": True}, "spec.probationChunks"),
        ({"cooldown": "thirty minutes"}, "spec.cooldown"),
        ({"rollbackOnWorldDrift": "yes"}, "spec.rollbackOnWorldDrift"),
        ({"releaseGate": {"maxShortfall": 0.02}}, "spec.releaseGate.maxShortfall"),
        ({"releaseGate": {"maxShortfall": "lots"}}, "spec.releaseGate.maxShortfall"),
        (
            {"rollbackRules": {"estimatedGap": {"min": "0.03"}}},
            "spec.rollbackRules.estimatedGap.min",
        ),
        (
            {"rollbackRules": {"parity": {"maxViolationRatio": "2"}}},
            "spec.rollbackRules.parity.maxViolationRatio",
        ),
        (
            {"rollbackRules": {"rankCorrelation": {"consecutiveChunks": 0}}},
            "spec.rollbackRules.rankCorrelation.consecutiveChunks",
        ),
        ({"rollbackRules": {"realizedGap": {"min": "NaN"}}}, "spec.rollbackRules.realizedGap.min"),
        (
            {"thresholds": {"estimated": {"accuracy": {"lower": "0.7"}}}},
            "spec.thresholds.estimated.accuracy",
        ),
        (
            {"thresholds": {"estimated": {"roc_auc": {"lower": "0.9", "upper": "0.8"}}}},
            "spec.thresholds.estimated.roc_auc.lower",
        ),
        ({"chunkSize": 100, "chunkPeriod": "1d"}, "spec.chunkPeriod"),
        ({"chunkPeriod": "1 day"}, "spec.chunkPeriod"),
        ({"chunkPeriod": "0d"}, "spec.chunkPeriod"),
        ({"maxSamplingError": "0.9"}, "spec.maxSamplingError"),
        ({"knownGood": "Not A Version"}, "spec.knownGood"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy({**spec(), **bad})
    assert err.value.path == field
    assert str(err.value).startswith(field)


def test_missing_model_and_non_object_spec() -> None:
    with pytest.raises(PolicyError, match=r"spec\.model: is required"):
        parse_policy({"targetRef": {"name": "p"}})
    with pytest.raises(PolicyError, match="spec: must be an object"):
        parse_policy("model: x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("45s", 45), ("2h", 7200), ("1h0m5s", 3605)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "1d", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_duration(text)
    assert err.value.path == "spec.cooldown"
    assert str(err.value).endswith(f"expected a duration like 30m, 1h30m or 45s, got {text!r}")


def sizing(**kw: Any) -> ChunkingStatus:
    base: dict[str, Any] = dict(
        mode="rows",
        chunk_rows=60,
        period_seconds=None,
        derived_rows=60,
        max_sampling_error=0.025,
        reference_rows=1000,
    )
    return ChunkingStatus(**{**base, **kw})


def test_chunk_period_and_known_good_are_parsed() -> None:
    policy = parse_policy(spec(chunkPeriod="1w", knownGood="v1", maxSamplingError="0.05"))
    assert policy.chunk_period == timedelta(weeks=1)
    assert (policy.known_good, policy.max_sampling_error) == ("v1", 0.05)
    assert policy.fixed_chunk_rows is None
    assert parse_policy(spec(chunkSize=60)).fixed_chunk_rows == 60


def test_unset_sizes_scale_with_the_derived_chunk() -> None:
    policy, problems = resolve(parse_policy(spec()), sizing(chunk_rows=60, derived_rows=60))
    assert (policy.chunk_size, policy.min_rows_per_chunk) == (60, 36)
    assert policy.realized_gap_min_labelled_rows == 24
    assert problems == ()
    # By period, the derived size is what a chunk is expected to hold.
    by_period = parse_policy(spec(chunkPeriod="1d"))
    resolved, _ = resolve(
        by_period, sizing(mode="period", chunk_rows=None, period_seconds=86400, derived_rows=200)
    )
    assert resolved.min_rows_per_chunk == 120


def test_a_labelled_minimum_above_the_chunk_pools_instead_of_being_unusable() -> None:
    """The realized-gap rule pools consecutive chunks until they hold minLabelledRows."""
    spec_ = spec(chunkSize=60, rollbackRules={"realizedGap": {"minLabelledRows": 200}})
    _, problems = resolve(parse_policy(spec_), None)
    assert problems == ()


def test_a_chunk_anchor_is_a_time_with_offset_and_needs_a_period() -> None:
    policy = parse_policy(spec(chunkPeriod="30d", chunkAnchor="2024-01-01T02:00:00+02:00"))
    assert policy.chunk_anchor == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_policy(spec(chunkPeriod="30d")).chunk_anchor is None
    with pytest.raises(PolicyError, match=r"spec\.chunkAnchor.*RFC 3339"):
        parse_policy(spec(chunkPeriod="30d", chunkAnchor="2024-01-01"))
    with pytest.raises(PolicyError, match=r"spec\.chunkAnchor.*RFC 3339"):
        parse_policy(spec(chunkPeriod="30d", chunkAnchor="next monday"))
    with pytest.raises(PolicyError, match=r"spec\.chunkAnchor.*chunkPeriod"):
        parse_policy(spec(chunkAnchor="2024-01-01T00:00:00Z"))


def test_the_measured_defaults_hold_at_500_rows() -> None:
    policy, problems = resolve(parse_policy(spec(chunkSize=500)), None)
    assert (policy.chunk_size, policy.min_rows_per_chunk) == (500, 300)
    assert policy.realized_gap_min_labelled_rows == 200
    assert problems == ()


@pytest.mark.parametrize(
    ("extra", "status", "reason", "words"),
    [
        ({"chunkSize": 60, "minRowsPerChunk": 300}, None, "MinRowsExceedChunkSize", "300"),
        (
            {"probationChunks": 2},
            sizing(),
            "RuleCannotFire",
            "rankCorrelation.consecutiveChunks 3 exceeds spec.probationChunks 2",
        ),
        ({}, sizing(reference_rows=100), "RuleCannotFire", "rank-correlation"),
        (
            {},
            sizing(chunk_rows=None, derived_rows=None, problem="3 positives"),
            "ChunkSizeNotDerivable",
            "3 positives",
        ),
    ],
)
def test_an_unusable_policy_is_named(
    extra: dict[str, Any], status: ChunkingStatus | None, reason: str, words: str
) -> None:
    _, problems = resolve(parse_policy(spec(**extra)), status)
    assert reason in [p.reason for p in problems]
    assert any(words in p.message for p in problems if p.reason == reason)
