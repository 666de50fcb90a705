"""A small-traffic model: one row a day for over two years, every label in, 30-day chunks.

Realized ROC AUC on every 30-row chunk, with its sampling error by the estimates' own
formula; chunks numbered 0, 1, ... from the model's first event, each with its date range;
the last, cut short by the end of the rows, marked partial; evidence stored with epoch
numbers by an earlier release dropped and re-analysed (docs/analysis.md, "Small chunks").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from nannyml.sampling_error.binary_classification import auroc_sampling_error_components
from rich.console import Console
from typer.testing import CliRunner

from bentos.training.data import Split
from monitor.analysis.estimation import roc_auc
from monitor.cli import app
from monitor.core.chunk_labels import realized_label
from monitor.core.evidence import ChunkEvidence
from monitor.core.settings import (
    AnalysisSettings,
    KubernetesSettings,
    MonitorSettings,
    OperatorSettings,
    StoreSettings,
)
from monitor.loops.background import analysis_pass
from monitor.memory.state import OperatorState
from monitor.store.sqlite import SqliteStore
from tests.support.records import served

runner = CliRunner()
DAYS = 800  # 26 whole 30-day periods and 20 days of a 27th
FIRST = pd.Timestamp("2023-01-01T00:00:00Z")


def test_daily_rows_in_30_day_chunks_show_realized_auc_numbered_from_zero(
    tmp_path: Path, split: Split, registrations: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("monitor.cli.console", Console(width=200))
    reg = registrations["good"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({reg.model: {"chunkPeriod": "30d"}}))
    settings = MonitorSettings(
        store=StoreSettings(db_path=tmp_path / "monitor.db"),
        kubernetes=KubernetesSettings(access="off", namespace="demo"),
        operator=OperatorSettings(policy_file=policy),
        analysis=AnalysisSettings(report_dir=tmp_path / "reports"),
    )
    records, labels = served(split, reg, 0, DAYS, "daily")
    days = [FIRST + pd.Timedelta(days=i) for i in range(DAYS)]
    daily = [
        {**r, "event_time": d.isoformat(), "timestamp": "2026-03-01T12:00:00+00:00"}
        for r, d in zip(records, days, strict=True)
    ]
    with SqliteStore(settings.store.db_path) as store:
        store.register(reg)
        store.append_records(daily)
        store.append_labels(labels)
        # What an earlier release stored: the period's number since the epoch (19358 days).
        legacy = ChunkEvidence(reg.model, reg.version, 645, 30, 1, 30, "", "")
        store.save_chunks([legacy])
        analysis_pass(store, settings)()
        chunks = sorted(store.chunks(reg.model, reg.version), key=lambda c: c.chunk_index)

        assert [c.chunk_index for c in chunks] == list(range(27))  # the epoch's 645 is gone
        assert [c.rows for c in chunks] == [30] * 26 + [20]
        assert [pd.Timestamp(c.period_start) for c in chunks] == [
            FIRST + pd.Timedelta(days=30 * i) for i in range(27)
        ]
        assert pd.Timestamp(chunks[-1].period_end) == FIRST + pd.Timedelta(days=810)
        assert [c.partial for c in chunks] == [False] * 26 + [True]
        status = OperatorState(store).chunking(reg.model, reg.version)
        assert status is not None and status.anchor == "2023-01-01T00:00:00Z"

        reference = reg.reference_frame()
        std, fraction = auroc_sampling_error_components(
            reference[reg.schema.label.name].astype(int), reference["probability"].astype(float)
        )
        y = np.array([lab["label"] for lab in labels])
        p = np.array([r["probability"] for r in records])
        shown = 0
        for c in chunks:
            assert c.labelled_rows == c.rows
            rows = slice(30 * c.chunk_index, 30 * c.chunk_index + c.rows)
            if 0 < y[rows].sum() < c.rows:  # both classes: a realized figure, however few
                shown += 1
                assert c.realized["roc_auc"] == pytest.approx(roc_auc(y[rows], p[rows]))
                error = c.realized_sampling_error["roc_auc"]
                assert error is not None
                assert error == pytest.approx(float(std / np.sqrt(c.rows * fraction)))
            else:
                assert c.realized["roc_auc"] is None
        assert shown >= 8  # the rest hold one class only (dry months)

    # The CLI shows the same numbers, ranges and sampling errors.
    db = str(settings.store.db_path)
    table = runner.invoke(app, ["chunks", reg.model, "--db", db])
    assert table.exit_code == 0, table.output
    assert "[2023-01-01, 2023-01-31)" in table.output and "partial" in table.output
    shown_chunk = next(c for c in chunks if c.realized["roc_auc"] is not None)
    assert realized_label(shown_chunk.to_dict()) in table.output  # e.g. 0.812 ±0.139
    as_json = runner.invoke(app, ["chunks", reg.model, "--db", db, "--json"])
    assert [c["chunk_index"] for c in json.loads(as_json.output)] == list(range(27))
    shown_status = runner.invoke(app, ["status", "--db", db])
    assert "chunk 0 from 2023-01-01T00:00:00Z" in shown_status.output
