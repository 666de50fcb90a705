"""Registration in bulk against the real monitor over loopback HTTP (issue 24): a booster
that crashes XGBoost is refused with a 400 and the next registrations, several at once, are
vetted; after a restart the same registrations are answered `200 unchanged` without a
single vetting. Real models trained into a temporary store (tests/conftest.py)."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.monitor import running_monitor

pytestmark = pytest.mark.slow


def vetted(log: str) -> int:
    return sum(1 for line in log.splitlines() if " vetted in " in line)


def test_a_crash_is_refused_then_several_at_once_are_vetted_and_a_restart_vets_none(
    tmp_path: Path, registrations: dict[str, Any]
) -> None:
    good = registrations["good"].model_dump(by_alias=True, mode="json")
    retrain = registrations["retrain"].model_dump(by_alias=True, mode="json")
    raw = registrations["good"].artifact_bytes()
    crash = {**good, "version": "cut-35", "artifact": base64.b64encode(raw[: len(raw) * 35 // 100])}
    crash["artifact"] = crash["artifact"].decode()
    bodies = [
        {**body, "model": f"bulk_{i}", "version": f"v{i}"}
        for i, body in enumerate((good, retrain, good, retrain))
    ]
    with running_monitor(tmp_path) as monitor:

        def post(body: dict[str, Any]) -> httpx.Response:
            return httpx.post(
                f"{monitor.url}/v1/models",
                json=body,
                headers=monitor.headers("operator"),
                timeout=120,
            )

        refused = post(crash)
        assert refused.status_code == 400, refused.text
        assert [e["loc"] for e in refused.json()["errors"]] == ["artifact"]
        assert "crashed XGBoost while loading (SIGSEGV)" in refused.text
        with ThreadPoolExecutor(len(bodies)) as pool:
            codes = [r.status_code for r in pool.map(post, bodies)]
        assert codes == [201] * len(bodies)
        assert vetted(monitor.log()) == len(bodies)

        monitor.stop()
        monitor.start(timeout=60)
        before = vetted(monitor.log())
        with ThreadPoolExecutor(len(bodies)) as pool:
            again = [r.status_code for r in pool.map(post, bodies)]
        assert again == [200] * len(bodies)
        assert vetted(monitor.log()) == before  # nothing vetted again
        assert post(crash).status_code == 400  # a refusal is not remembered as vetted
