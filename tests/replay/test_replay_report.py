"""The demo's closing per-chunk table and decision messages (replay/report.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from monitor.core.evidence import ChunkEvidence, Estimate, FeatureDrift
from replay.report import (
    FULL_COLUMNS,
    chunk_rows,
    chunk_table,
    decisions_by_chunk,
    write_chunk_csv,
)

GOOD = "good-0123456789"
BAD = "no-key-features-dad282b7c0"
FEATURES = ("humid", "dewp", "visib", "temp", "pressure")


def chunk(version: str, index: int, first_seq: int, drifting: bool = False) -> dict[str, Any]:
    shadow = version != GOOD
    return ChunkEvidence(
        model="rain_forecast",
        version=version,
        chunk_index=index,
        rows=500,
        first_seq=first_seq,
        last_seq=first_seq + 499,
        start_time="2013-08-15T00:00:00+00:00",
        end_time="2013-08-22T00:00:00+00:00",
        estimated={
            "roc_auc": Estimate(
                0.8123,
                0.7812,
                0.8434,
                interval_lower=0.70,
                interval_upper=0.92,
                interval_level=0.9,
            )
        },
        realized={"roc_auc": 0.7987},
        labelled_rows=500,
        drift=[FeatureDrift(f, "jensen_shannon", 0.3, 0.1, drifting) for f in FEATURES],
        parity_violation_ratio=0.0,
        known_good_version=GOOD if shadow else None,
        rank_correlation=0.91 if shadow else None,
        known_good_estimated={"roc_auc": Estimate(0.8712)} if shadow else {},
        known_good_realized={"roc_auc": 0.8801} if shadow else {},
        analysed_at=f"2024-05-01T10:{index:02d}:00Z",
    ).to_dict()


def demo_chunks() -> list[dict[str, Any]]:
    good = [chunk(GOOD, i, 1 + 500 * i) for i in range(4)]
    bad = [chunk(BAD, i, 2001 + 500 * i, drifting=i > 1) for i in range(12)]  # to #11
    return good + bad


def audit() -> list[dict[str, Any]]:
    """Long decision texts on one chunk: the widest cell the table has to hold."""
    common = {"fromVersion": BAD, "toVersion": GOOD, "mode": "dryRun"}
    return [
        {"kind": "dry-run-rollback", "trigger": "estimated_gap", "time": "2024-05-01T10:05:30Z"}
        | common,
        {"kind": "retraining-recommended", "time": "2024-05-01T10:05:40Z"} | common,
    ]


def sim_times() -> dict[str, list[pd.Timestamp]]:
    start = pd.Timestamp("2013-07-01", tz="UTC")
    return {v: [start + pd.Timedelta(hours=h) for h in range(500 * 12)] for v in (GOOD, BAD)}


def render(width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(chunk_table(demo_chunks(), audit(), sim_times()))
    return console.export_text().splitlines()


def test_the_table_fits_120_columns() -> None:
    lines = render(120)
    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    text = "\n".join(lines)
    assert "0.812 [0.70,0.92]" in text  # the calibrated interval, not NannyML's band
    for header in ("release", "estimate [90%]", "realized", "known-good", "gap", "drift"):
        assert header in text
    assert "no-key-features" in text
    assert "0.799" in text and "0.871" in text and "-0.059" in text  # realized, shadow, gap


def test_a_realized_figure_is_shown_with_its_sampling_error_and_fits() -> None:
    chunks = [
        {**c, "realized_sampling_error": {"roc_auc": 0.0412}} if c.get("realized") else c
        for c in demo_chunks()
    ]
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(chunk_table(chunks, audit(), sim_times()))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    assert "0.799±0.04" in "\n".join(lines)


def test_the_table_is_narrow_by_itself_not_squeezed_by_the_terminal() -> None:
    """At a 300-column console nothing shrinks it: its own width is within 120 columns, so a
    pipe (the CLI prints at 200 there) shows the same table as a 120-column terminal."""
    wide = render(300)
    assert max(len(line) for line in wide) <= 120, "\n".join(wide)
    assert wide == render(120)


def test_every_column_goes_to_the_csv(tmp_path: Path) -> None:
    rows = chunk_rows(demo_chunks(), audit(), sim_times())
    path = write_chunk_csv(rows, tmp_path / "reports" / "chunks.csv")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        got = list(reader)
        assert reader.fieldnames == FULL_COLUMNS
    assert len(got) == 16
    bad2 = got[6]
    assert (bad2["version"], bad2["chunk"], bad2["period"]) == (BAD, "2", "08-11..09-01")
    assert (bad2["estimated"], bad2["estimated_lower"], bad2["estimated_upper"]) == (
        "0.8123",
        "0.7812",
        "0.8434",
    )
    assert (bad2["realized"], bad2["known_good_estimated"], bad2["known_good_realized"]) == (
        "0.7987",
        "0.8712",
        "0.8801",
    )
    assert (bad2["gap_estimated"], bad2["gap_realized"]) == ("-0.0589", "-0.0814")
    assert (bad2["rank_correlation"], bad2["parity_violation_ratio"]) == ("0.91", "0.0")
    assert bad2["drifting"] == "dewp;humid;pressure;temp;visib"
    assert got[0]["drifting"] == "" and got[0]["known_good_estimated"] == ""
    decided = [r for r in got if r["decision"]]
    assert [(r["version"], r["chunk"]) for r in decided] == [(BAD, "5")]
    assert decided[0]["decision"] == (
        "dry-run-rollback (estimated_gap) -> good; retraining-recommended"
    )


def test_a_gate_decision_is_shown_on_the_first_chunk_of_the_release() -> None:
    """The gate fires at registration, before any chunk of the release was analysed."""
    gate = {
        "kind": "rollback",
        "trigger": "gate",
        "fromVersion": BAD,
        "toVersion": GOOD,
        "time": "2024-05-01T09:00:00Z",
    }
    assert decisions_by_chunk(demo_chunks(), [gate]) == {(BAD, 0): "rollback (gate) -> good"}


def test_a_gate_rollback_reads_on_one_row_of_the_table() -> None:
    gate = {
        "kind": "dry-run-rollback",
        "trigger": "gate",
        "fromVersion": BAD,
        "toVersion": GOOD,
        "time": "2024-05-01T09:00:00Z",
    }
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(chunk_table(demo_chunks(), [gate], sim_times()))
    lines = console.export_text().splitlines()
    row = [line for line in lines if "dry-run-rollback" in line]
    assert len(row) == 1 and "dry-run-rollback (gate) -> good" in row[0]
    # the chunk named by its number and the event-time day it starts (sim_times: 2013-07-01)
    assert row[0].startswith("│ no-key-features │  0 07-01 │")
