"""A ModelMonitor spec, parsed and validated into a typed `Policy` with the measured defaults.

The CRD's OpenAPI schema refuses most bad specs at `kubectl apply`; this module is the second
line (the monitor may read objects written before a CRD upgrade, or run offline without any
API server) and the one place that turns the spec's strings into numbers. Kubernetes API
conventions forbid floats in specs, so thresholds arrive as strings ("-0.03") and are parsed
through `Decimal` so that "0.1" means exactly what the operator typed.

Defaults are the ones measured in docs/design.md's "Deciding" section (half a year of real
traffic, July-December 2013, five release dates). The chunk size and what scales with it
(`minRowsPerChunk`, `realizedGap.minLabelledRows`) default to figures derived from the
model's reference (`resolve`): the smallest chunk whose ROC AUC sampling error is within
`maxSamplingError`. `resolve` also names what makes a parsed policy unusable at that size
(`PolicyProblem`): parsing only refuses what is malformed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from monitor.core.drift_settings import DriftSettings
from monitor.core.gap import FALLBACK_CHUNK_ROWS, GapFilter
from monitor.decision.drift_policy import parse_drift
from monitor.decision.errors import PolicyError
from monitor.decision.spec_reader import SpecReader
from monitor.memory.state import ChunkingStatus

Mode = Literal["auto", "dryRun", "off"]
MODES: tuple[Mode, ...] = ("auto", "dryRun", "off")
GATE_METRICS = ("roc_auc", "pr_auc", "f1")
PERFORMANCE_METRICS = ("roc_auc", "f1", "precision", "recall")
_NAME = re.compile(r"^[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_PERIOD = re.compile(r"^([1-9]\d*)([hdw])$")
_PERIOD_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class Bounds:
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class CandidatePolicy:
    """`spec.candidatePolicy`: when a candidate's same-rows gap decides a verdict.

    Defaults measured on the shipped data (docs/progressive-delivery.md): `margin` is the
    equivalence margin of both gaps and how far below zero the estimated gap must be for
    `Worse` (the rollback rule's -0.03); `realized_margin` the same for the realized gap
    (the rollback rule's -0.05); `level` is the two-sided level of the gap's band. Three
    chunks at least: with two, the band's t quantile rests on one degree of freedom and a
    chance agreement of two chunks passed for equivalence (measured).
    """

    min_chunks: int = 3
    min_rows: int = 1000
    margin: float = 0.03
    realized_margin: float = 0.05
    level: float = 0.9
    backfill_chunks: int = 4
    reject_worse: bool = True


MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Policy:
    """Everything the decision needs from the spec, as plain numbers."""

    model: str
    target_name: str
    target_kind: str = "Deployment"
    mode: Mode = "dryRun"
    chunk_size: int = 500
    min_rows_per_chunk: int = 300
    probation_chunks: int = 6
    cooldown: timedelta = timedelta(minutes=30)
    rollback_on_world_drift: bool = False
    gate_metric: str = "roc_auc"
    gate_max_shortfall: float = 0.02
    parity_max_violation_ratio: float = 0.01
    parity_tolerance: float = 0.0001
    parity_chunks: int = 1
    rank_sigmas: float = 3.0
    rank_chunks: int = 3
    estimated_gap_metric: str = "roc_auc"
    estimated_gap_min: float = -0.03
    estimated_gap_chunks: int = 2
    estimated_gap_same_learner_only: bool = True
    realized_gap_metric: str = "roc_auc"
    realized_gap_min: float = -0.05
    realized_gap_chunks: int = 2
    realized_gap_min_labelled_rows: int = 200
    estimated_bounds: dict[str, Bounds] = field(
        default_factory=lambda: {"roc_auc": Bounds(lower=0.70)}
    )
    realized_bounds: dict[str, Bounds] = field(
        default_factory=lambda: {"roc_auc": Bounds(lower=0.70)}
    )
    chunk_period: timedelta | None = None  # chunks by event time instead of by rows
    chunk_anchor: datetime | None = None  # where periods start (None: the model's first event)
    max_sampling_error: float = 0.025  # ROC AUC sampling error a derived chunk stays within
    known_good: str | None = None  # declared baseline known-good version
    candidates: tuple[str, ...] = ()  # spec.candidates: versions judged before they serve
    candidate_policy: CandidatePolicy = field(default_factory=CandidatePolicy)
    drift: DriftSettings = field(default_factory=DriftSettings)  # spec.drift: per feature
    per_feature: bool = False  # spec.metrics.perFeature: every feature's and metric's series
    # Spec fields given explicitly (camelCase paths); the rest take derived defaults.
    explicit: frozenset[str] = frozenset()

    @property
    def fixed_chunk_rows(self) -> int | None:
        """`spec.chunkSize` when given; None = by period, or derived from the reference."""
        return self.chunk_size if "chunkSize" in self.explicit else None


@dataclass(frozen=True)
class PolicyProblem:
    """Why a valid spec cannot work as meant at this chunk size (a `PolicyUnusable` reason)."""

    reason: str
    message: str


def parse_duration(text: str, path: str = "spec.cooldown") -> timedelta:
    """`30m`, `1h30m`, `45s` -> timedelta (Go-style subset; what the CRD pattern admits)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not text or match is None or not any(match.groups()):
        raise PolicyError(path, f"expected a duration like 30m, 1h30m or 45s, got {text!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def parse_policy(spec: Mapping[str, Any]) -> Policy:
    """Validate a ModelMonitor `spec` (camelCase, as stored in the API) into a `Policy`.

    Raises `PolicyError` naming the first offending field; never returns a half-valid policy.
    """
    if not isinstance(spec, Mapping):
        raise PolicyError("spec", "must be an object")
    reader = SpecReader(spec, "spec")
    model = reader.string("model", required=True)
    if not _NAME.match(model):
        raise PolicyError("spec.model", f"{model!r} is not a valid model name")
    target = reader.child("targetRef", required=True)
    kind = target.string("kind", default="Deployment")
    if kind != "Deployment":
        raise PolicyError("spec.targetRef.kind", f"only Deployment is supported, got {kind!r}")
    rules = reader.child("rollbackRules")
    parity, rank = rules.child("parity"), rules.child("rankCorrelation")
    est, real = rules.child("estimatedGap"), rules.child("realizedGap")
    gate = reader.child("releaseGate")
    thresholds = reader.child("thresholds")
    explicit = frozenset(
        path
        for path, present in (
            ("chunkSize", spec.get("chunkSize") is not None),
            ("minRowsPerChunk", spec.get("minRowsPerChunk") is not None),
            ("realizedGap.minLabelledRows", real.data.get("minLabelledRows") is not None),
        )
        if present
    )
    period = reader.string("chunkPeriod", default="")
    if period and "chunkSize" in explicit:
        raise PolicyError("spec.chunkPeriod", "set spec.chunkSize or spec.chunkPeriod, not both")
    anchor = parse_anchor(reader.string("chunkAnchor", default=""))
    if anchor is not None and not period:
        raise PolicyError("spec.chunkAnchor", "anchors periods: set spec.chunkPeriod with it")
    known_good = reader.string("knownGood", default="") or None
    if known_good is not None and not _NAME.match(known_good):
        raise PolicyError("spec.knownGood", f"{known_good!r} is not a valid version name")
    policy = Policy(
        model=model,
        target_name=target.string("name", required=True),
        target_kind=kind,
        mode=reader.choice("mode", MODES, "dryRun"),  # type: ignore[arg-type]
        chunk_size=reader.integer("chunkSize", FALLBACK_CHUNK_ROWS, minimum=50),
        min_rows_per_chunk=reader.integer("minRowsPerChunk", 300, minimum=1),
        probation_chunks=reader.integer("probationChunks", 6, minimum=1),
        cooldown=parse_duration(reader.string("cooldown", default="30m"), "spec.cooldown"),
        rollback_on_world_drift=reader.boolean("rollbackOnWorldDrift", False),
        gate_metric=gate.choice("metric", GATE_METRICS, "roc_auc"),
        gate_max_shortfall=gate.number("maxShortfall", "0.02", low=0, high=1),
        parity_max_violation_ratio=parity.number("maxViolationRatio", "0.01", low=0, high=1),
        parity_tolerance=parity.number("tolerance", "0.0001", low=0, high=1),
        parity_chunks=parity.integer("consecutiveChunks", 1, minimum=1),
        rank_sigmas=rank.number("sigmas", "3", low=0, high=100),
        rank_chunks=rank.integer("consecutiveChunks", 3, minimum=1),
        estimated_gap_metric=est.choice("metric", ("roc_auc",), "roc_auc"),
        estimated_gap_min=est.number("min", "-0.03", low=-1, high=0),
        estimated_gap_chunks=est.integer("consecutiveChunks", 2, minimum=1),
        estimated_gap_same_learner_only=est.boolean("sameLearnerOnly", True),
        realized_gap_metric=real.choice("metric", PERFORMANCE_METRICS, "roc_auc"),
        realized_gap_min=real.number("min", "-0.05", low=-1, high=0),
        realized_gap_chunks=real.integer("consecutiveChunks", 2, minimum=1),
        realized_gap_min_labelled_rows=real.integer("minLabelledRows", 200, minimum=1),
        estimated_bounds=_bounds(thresholds, "estimated"),
        realized_bounds=_bounds(thresholds, "realized"),
        chunk_period=parse_period(period) if period else None,
        chunk_anchor=anchor,
        max_sampling_error=reader.number("maxSamplingError", "0.025", low=0.001, high=0.5),
        known_good=known_good,
        candidates=_candidates(spec.get("candidates")),
        candidate_policy=_candidate_policy(reader.child("candidatePolicy")),
        drift=parse_drift(spec.get("drift")),
        per_feature=reader.child("metrics").boolean("perFeature", False),
        explicit=explicit,
    )
    return policy


def _candidates(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError("spec.candidates", "must be a list of version names")
    if len(value) > MAX_CANDIDATES:
        raise PolicyError(
            "spec.candidates", f"at most {MAX_CANDIDATES} candidates, got {len(value)}"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _NAME.match(item):
            raise PolicyError(f"spec.candidates[{i}]", f"{item!r} is not a valid version name")
    if len(set(value)) != len(value):
        raise PolicyError("spec.candidates", "lists a version twice")
    return tuple(value)


def _candidate_policy(reader: SpecReader) -> CandidatePolicy:
    return CandidatePolicy(
        min_chunks=reader.integer("minChunks", 3, minimum=2),
        min_rows=reader.integer("minRows", 1000, minimum=1),
        margin=reader.number("margin", "0.03", low=0, high=1),
        realized_margin=reader.number("realizedMargin", "0.05", low=0, high=1),
        level=reader.number("level", "0.9", low=0.5, high=0.999),
        backfill_chunks=reader.integer("backfillChunks", 4, minimum=0),
        reject_worse=reader.boolean("rejectWorse", True),
    )


def parse_period(text: str, path: str = "spec.chunkPeriod") -> timedelta:
    """`12h`, `1d`, `1w` -> timedelta (one number and one unit: hours, days or weeks)."""
    match = _PERIOD.match(text) if isinstance(text, str) else None
    if match is None:
        raise PolicyError(path, f"expected a period like 12h, 1d or 1w, got {text!r}")
    return int(match.group(1)) * _PERIOD_UNITS[match.group(2)]


def parse_anchor(text: str, path: str = "spec.chunkAnchor") -> datetime | None:
    """An RFC 3339 time with its offset (`2024-01-01T00:00:00Z`) -> UTC datetime; "" -> None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise PolicyError(path, f"expected an RFC 3339 time with offset, got {text!r}")
    return moment.astimezone(UTC)


def resolve(
    policy: Policy, sizing: ChunkingStatus | None
) -> tuple[Policy, tuple[PolicyProblem, ...]]:
    """The policy with its derived defaults filled in for this chunking, and its problems.

    `sizing` is what the analysis found for the live version (None before its first cycle:
    the explicit chunk size, else the 500-row fallback, stands in). Unset sizes scale with
    the chunk as `monitor.core.gap.GapFilter.scaled` says: `minRowsPerChunk` 0.6 and
    `realizedGap.minLabelledRows` 0.4 of its rows (the measured 300 and 200 at 500 rows).
    """
    problems: list[PolicyProblem] = []
    basis = sizing.basis_rows if sizing is not None else None
    if policy.chunk_period is None and policy.fixed_chunk_rows is not None:
        basis = policy.fixed_chunk_rows
    if basis is None:
        if sizing is not None and policy.fixed_chunk_rows is None:
            problems.append(
                PolicyProblem(
                    "ChunkSizeNotDerivable",
                    f"{sizing.problem or 'no size derived from the reference'}; "
                    "set spec.chunkSize (or spec.minRowsPerChunk with spec.chunkPeriod)",
                )
            )
        basis = FALLBACK_CHUNK_ROWS
    scaled = GapFilter.scaled(None, basis)
    resolved = replace(
        policy,
        chunk_size=basis if policy.chunk_period is None else policy.chunk_size,
        min_rows_per_chunk=policy.min_rows_per_chunk
        if "minRowsPerChunk" in policy.explicit
        else scaled.min_rows,
        realized_gap_min_labelled_rows=policy.realized_gap_min_labelled_rows
        if "realizedGap.minLabelledRows" in policy.explicit
        else scaled.min_labelled_rows,
    )
    problems.extend(_unusable(resolved, basis, sizing))
    return resolved, tuple(problems)


def _unusable(policy: Policy, basis: int, sizing: ChunkingStatus | None) -> list[PolicyProblem]:
    """What can never work at this chunk size: each a rule that could not fire."""
    found = []
    by_rows = policy.chunk_period is None
    if by_rows and policy.min_rows_per_chunk > policy.chunk_size:
        # The gap rules and probation pool consecutive chunks up to the minimum
        # (`monitor.core.gap.pool`); the rules that judge one chunk at a time never fire.
        found.append(
            PolicyProblem(
                "MinRowsExceedChunkSize",
                f"spec.minRowsPerChunk {policy.min_rows_per_chunk} exceeds the chunk size "
                f"{policy.chunk_size}: no chunk is judged on its own (parity, rank "
                "correlation and bounds never fire); the gap rules pool chunks to it",
            )
        )
    rules = (
        ("parity", policy.parity_chunks),
        ("rankCorrelation", policy.rank_chunks),
        ("estimatedGap", policy.estimated_gap_chunks),
        ("realizedGap", policy.realized_gap_chunks),
    )
    for name, k in rules:
        if k > policy.probation_chunks:
            found.append(
                PolicyProblem(
                    "RuleCannotFire",
                    f"spec.rollbackRules.{name}.consecutiveChunks {k} exceeds "
                    f"spec.probationChunks {policy.probation_chunks}: a release is known-good "
                    "before the rule could fire",
                )
            )
    if sizing is not None and sizing.reference_rows < 2 * basis:
        found.append(
            PolicyProblem(
                "RuleCannotFire",
                f"the reference has {sizing.reference_rows} rows, fewer than two chunks of "
                f"{basis}: the rank-correlation rule has no floor and never fires",
            )
        )
    return found


def _bounds(thresholds: SpecReader, kind: str) -> dict[str, Bounds]:
    section = thresholds.child(kind)
    if not section.data:
        return {"roc_auc": Bounds(lower=0.70)}
    result: dict[str, Bounds] = {}
    for metric in section.data:
        if metric not in PERFORMANCE_METRICS:
            raise PolicyError(
                f"{section.path}.{metric}", f"unknown metric; use {PERFORMANCE_METRICS}"
            )
        entry = section.child(metric)
        lower = entry.number("lower", None, low=0, high=1)
        upper = entry.number("upper", None, low=0, high=1)
        if lower is not None and upper is not None and lower > upper:
            raise PolicyError(f"{entry.path}.lower", f"{lower} is above upper {upper}")
        result[metric] = Bounds(lower=lower, upper=upper)
    return result
