"""A real Prometheus server on a loopback port, scraping the stack and loaded with our rules.

The shipped rules hold `for:` durations sized for real clusters (minutes). The replay runs
on an accelerated clock, so a copy of the rules with every `for:` compressed to a few
seconds is loaded; the expressions, labels and annotations stay exactly as shipped.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from replay.launcher import Process, free_port, process_env

RULES_FILE = Path(__file__).resolve().parent.parent / "helm" / "modelguard" / "rules"


def shipped_rules_file() -> Path:
    files = sorted(RULES_FILE.glob("*.yaml")) + sorted(RULES_FILE.glob("*.yml"))
    files = [f for f in files if "test" not in f.name]
    if not files:
        raise FileNotFoundError(f"no rules file under {RULES_FILE}")
    return files[0]


def compress_for(rules: dict[str, Any], seconds: int) -> dict[str, Any]:
    for group in rules.get("groups", []):
        group["interval"] = "1s"
        for rule in group.get("rules", []):
            if "for" in rule:
                rule["for"] = f"{seconds}s"
    return rules


def start_prometheus(
    workdir: Path,
    targets: dict[str, str],
    for_seconds: int = 2,
    rules: Path | None = None,
    labels: dict[str, str] | None = None,
) -> Process:
    """Scrape each `job -> base URL` every second; evaluate the (compressed) rules every second.

    `labels` are added to every scraped series as target labels (what a ServiceMonitor adds,
    e.g. `namespace`)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("prometheus not on PATH (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    rules_path = workdir / "rules.yaml"
    shipped = yaml.safe_load((rules or shipped_rules_file()).read_text())
    rules_path.write_text(yaml.safe_dump(compress_for(shipped, for_seconds)))
    scrape = []
    for job, url in targets.items():
        host = re.sub(r"^https?://", "", url).rstrip("/")
        scrape.append(
            {
                "job_name": job,
                "scrape_interval": "1s",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [host], **({"labels": labels} if labels else {})}],
            }
        )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_path)],
        "scrape_configs": scrape,
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    return Process(
        name="prometheus",
        cmd=[
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        env=process_env(),
        port=port,
        log_path=workdir / "prometheus.log",
        ready_path="/-/ready",
    ).start(timeout=60)


def query(prom: Process, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}, timeout=10)
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])


def firing_alerts(prom: Process) -> dict[str, list[dict[str, str]]]:
    resp = httpx.get(f"{prom.url}/api/v1/alerts", timeout=10)
    resp.raise_for_status()
    out: dict[str, list[dict[str, str]]] = {}
    for alert in resp.json()["data"]["alerts"]:
        if alert["state"] == "firing":
            out.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return out


def wait_for_alert(prom: Process, name: str, timeout: float = 60) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = firing_alerts(prom).get(name)
        if got:
            return got
        time.sleep(1)
    raise TimeoutError(
        f"alert {name} not firing after {timeout}s; firing: {list(firing_alerts(prom))}"
    )


def alert_has_fired(prom: Process, name: str, window: str = "2h") -> bool:
    """Whether the alert was firing at any evaluation within `window` (it may have resolved)."""
    expr = f'max_over_time(ALERTS{{alertname="{name}",alertstate="firing"}}[{window}])'
    return bool(query(prom, expr))
