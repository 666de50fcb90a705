"""The candidate listing as the service answers it: `GET /v1/models/{model}/candidates`
returns it as it is and `python -m monitor candidates --json` prints it, so the two can never
differ. (The API's other bodies are HTTP's own: monitor/api/models.py.)"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CandidateVerdictBody(BaseModel):
    """A candidate's verdict (`monitor.decision.candidates.CandidateVerdict.to_json()`): its
    same-rows gap against the baseline, with the band the verdict stands on."""

    version: str
    verdict: Literal["Better", "Equivalent", "Worse", "Inconclusive", "Incompatible"]
    reason: str = Field(description="CamelCase reason (WorseOnSameRows, TooFewRows, ...)")
    message: str
    baseline_version: str | None = Field(description="The version whose rows it was scored on")
    basis: Literal["estimated", "realized", "none"] = Field(
        description="Which gap decided: realized (labels) outrank estimated (CBPE)"
    )
    chunks: int
    rows: int
    labelled_rows: int
    chunks_needed: int | None = Field(
        description="More chunks that would likely decide (None: decided, or unknown)"
    )
    estimated_gap: float | None = Field(description="Candidate - baseline, estimated ROC AUC")
    estimated_gap_lower: float | None
    estimated_gap_upper: float | None
    realized_gap: float | None = Field(description="Candidate - baseline, realized ROC AUC")
    realized_gap_lower: float | None
    realized_gap_upper: float | None
    level: float = Field(description="Two-sided level of the bands")


class CandidateInfo(BaseModel):
    version: str
    sources: list[Literal["api", "spec"]] = Field(
        description="Who declares it: the API/CLI, a ModelMonitor's spec.candidates, or both"
    )
    added_at: str
    added_by: str = ""
    verdict: CandidateVerdictBody | None = Field(
        description="The operator's last verdict, else one computed now with the default "
        "candidate policy"
    )


class CandidateList(BaseModel):
    model: str
    candidates: list[CandidateInfo]
