"""Drive real traffic: 2013 H2 hour by hour through the predictor, labels 4 simulated hours later
(`label_delay_hours`).

The clock is simulated: each step sends `step_hours` of observations (all stations) as one
request, then posts the labels whose delay has passed. Which predictor answers a step is the
caller's choice (`route`), so a release can go live mid-replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pandas as pd

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, records
from contract.schema import ModelSchema


@dataclass
class ReplayStats:
    steps: int = 0
    rows_sent: int = 0
    rows_refused_by_schema: int = 0
    predictions: dict[str, int] = field(default_factory=dict)  # version -> rows scored
    labels_posted: int = 0
    http_errors: int = 0
    label_retries: int = 0  # label posts deferred because the monitor was unreachable
    prediction_ids: list[str] = field(default_factory=list)
    # version -> simulated observation time of each row it scored, in sending order
    sim_times: dict[str, list[pd.Timestamp]] = field(default_factory=dict)
    sim_time: str = ""


@dataclass
class Step:
    index: int
    sim_time: pd.Timestamp
    url: str
    rows: int
    stats: ReplayStats


class Replayer:
    def __init__(
        self,
        rows: pd.DataFrame,
        schema: ModelSchema,
        monitor_url: str,
        *,
        label_delay_hours: int = 4,
        step_hours: int = 24,
        step_seconds: float = 0.0,
        client: httpx.Client | None = None,
        labels_headers: dict[str, str] | None = None,
    ) -> None:
        valid = schema.valid_rows(rows)
        self.rows = rows.loc[valid].sort_values([TIME_COLUMN, "origin"]).reset_index(drop=True)
        self.schema = schema
        self.monitor_url = monitor_url.rstrip("/")
        self.delay = pd.Timedelta(hours=label_delay_hours)
        self.step = pd.Timedelta(hours=step_hours)
        self.step_seconds = step_seconds
        self.client = client or httpx.Client(timeout=60.0)
        self.labels_headers = labels_headers or {}  # the monitor's labels token
        self.stats = ReplayStats(rows_refused_by_schema=int((~valid).sum()))
        self._pending: list[tuple[pd.Timestamp, str, int]] = []  # (observed at, id, label)

    def run(
        self,
        route: Callable[[pd.Timestamp], str],
        on_step: Callable[[Step], None] | None = None,
        until: pd.Timestamp | None = None,
    ) -> ReplayStats:
        if self.rows.empty:
            return self.stats
        t = self.rows[TIME_COLUMN].min().floor("D")
        end = until if until is not None else self.rows[TIME_COLUMN].max() + self.step
        index = 0
        while t < end:
            began = time.monotonic()
            batch = self.rows[
                (self.rows[TIME_COLUMN] >= t) & (self.rows[TIME_COLUMN] < t + self.step)
            ]
            url = route(t)
            if not batch.empty:
                self._predict(url, batch)
            t = t + self.step
            self._post_due_labels(t)
            self.stats.steps = index + 1
            self.stats.sim_time = t.isoformat()
            if on_step:
                on_step(Step(index, t, url, len(batch), self.stats))
            index += 1
            pause = self.step_seconds - (time.monotonic() - began)
            if pause > 0:
                time.sleep(pause)
        self._post_due_labels(None)
        return self.stats

    def _predict(self, url: str, batch: pd.DataFrame) -> None:
        # The rows' own time travels with them, so chunks carry event-time ranges (a replay
        # squeezes months into minutes of receive time).
        stamp = pd.Timestamp(batch[TIME_COLUMN].min()).isoformat()
        resp = self.client.post(
            f"{url}/predict",
            json={"records": records(batch, self.schema)},
            headers={"X-Modelguard-Event-Time": stamp},
        )
        if resp.status_code != 200:
            self.stats.http_errors += 1
            raise RuntimeError(f"predictor {url} answered {resp.status_code}: {resp.text[:500]}")
        answers = resp.json()
        for (_, row), answer in zip(batch.iterrows(), answers, strict=True):
            pid = answer["prediction_id"]
            version = answer["model_version"]
            self.stats.predictions[version] = self.stats.predictions.get(version, 0) + 1
            self.stats.prediction_ids.append(pid)
            self.stats.sim_times.setdefault(version, []).append(row[TIME_COLUMN])
            self._pending.append((row[TIME_COLUMN], pid, int(row[LABEL_COLUMN])))
        self.stats.rows_sent += len(batch)

    def _post_due_labels(self, now: pd.Timestamp | None) -> None:
        """Labels whose horizon has passed; kept for the next step if the monitor is away."""
        due = [p for p in self._pending if now is None or p[0] + self.delay <= now]
        if not due:
            return
        payload = {"labels": [{"prediction_id": pid, "label": label} for _, pid, label in due]}
        try:
            resp = self.client.post(
                f"{self.monitor_url}/v1/labels", json=payload, headers=self.labels_headers
            )
        except httpx.TransportError:
            if now is None:
                raise
            self.stats.label_retries += 1
            return
        if resp.status_code >= 300:
            self.stats.http_errors += 1
            raise RuntimeError(f"monitor refused labels: {resp.status_code} {resp.text[:500]}")
        self.stats.labels_posted += len(due)
        kept = {pid for _, pid, _ in due}
        self._pending = [p for p in self._pending if p[1] not in kept]
