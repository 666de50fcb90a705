"""The flights model end to end, as a user brings their own model: only the `modelguard`
command and the example's training script, then the real predictor and the real monitor.

    prepare CSVs -> modelguard schema infer -> train (ModelSchema.encode, booster.save_model)
    -> modelguard package (good, and a worse release without its strongest feature)
    -> modelguard validate -> bentoml serve each -> it registers with the monitor
    -> replay flights through it, post their labels -> the monitor analyses chunks
    -> the good version passes probation -> the worse one is rejected by the release gate
    -> python -m monitor reconcile --once --dry-run, report, /metrics

`make demo-flights` runs it on all 336,776 flights and writes bench/results/flights.json;
tests/integration/test_flights_e2e.py runs it on a sample (docs/your-model.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from bentos.cli.schema_file import load_schema
from bentos.training.data import records
from bentos.training.flights import LABEL, TIME
from replay import launcher
from replay.stack import new_token, version_of, wait_known_good, wait_registered

MODEL = "flight_delay"
WORSE = ("no-sched-hour", ["--drop", "sched_hour"])
BATCH = 100


@dataclass(frozen=True)
class Sizes:
    """How much of the data one run uses: `sample` flights (None: all), then the first
    `good_rows` replay flights served by the good release and `worse_rows` by the worse."""

    sample: int | None = None
    good_rows: int = 20_000
    worse_rows: int = 5_000
    chunk_size: int = 500


def run_tool(module: str, *args: object, env: dict[str, str] | None = None) -> str:
    """`python -m module args`; a non-zero exit raises with what it printed."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=launcher.process_env(env), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def modelguard(*args: object) -> str:
    """The `modelguard` command (`python -m bentos.cli` is the same typer app)."""
    return run_tool("bentos.cli", *args)


def serve(
    predictor: launcher.Process, monitor: launcher.MonitorProcess, rows: pd.DataFrame, schema: Any
) -> int:
    """POST the rows to /predict in batches, then their labels to the monitor."""
    label_batches = []
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(rows), BATCH):
            part = rows.iloc[start : start + BATCH]
            resp = client.post(f"{predictor.url}/predict", json={"records": records(part, schema)})
            resp.raise_for_status()
            ids = [out["prediction_id"] for out in resp.json()]
            label_batches.append(
                [
                    {"prediction_id": pid, "label": int(y)}
                    for pid, y in zip(ids, part[LABEL], strict=True)
                ]
            )
        for labels in label_batches:
            client.post(
                f"{monitor.url}/v1/labels",
                json={"labels": labels},
                headers=monitor.headers("labels"),
            ).raise_for_status()
    return len(rows)


def wait_for(what: str, check: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{what} within {timeout}s")


def run(workdir: Path, sizes: Sizes) -> dict[str, Any]:
    """Every step, through the command line and the real servers; returns the figures."""
    data, artefacts = workdir / "data", workdir / "artefacts"
    artefacts.mkdir(parents=True, exist_ok=True)
    sample = ["--sample", sizes.sample] if sizes.sample else []
    run_tool("bentos.training.flights", "prepare", "--out", data, *sample)
    schema_file = artefacts / "schema.yaml"
    modelguard(
        "schema", "infer", data / "history.csv", "--label", LABEL, "--time", TIME,
        "--segment", "origin", "--output", schema_file,
    )  # fmt: skip
    tags: dict[str, str] = {}
    for release, extra in [("good", []), WORSE]:
        booster = artefacts / f"{release}.ubj"
        run_tool(
            "bentos.training.flights", "train", "--schema", schema_file,
            "--data", data / "train.csv", "--out", booster, *extra,
        )  # fmt: skip
        out = modelguard(
            "package", booster, "--schema", schema_file, "--reference", data / "reference.csv",
            "--name", MODEL, "--release", release,
        )  # fmt: skip
        tags[release] = out.strip().splitlines()[-1]
        modelguard("validate", tags[release])
    good, worse = version_of(tags["good"]), version_of(tags[WORSE[0]])

    schema = load_schema(schema_file)
    replay = pd.read_csv(data / "replay.csv")
    inside = schema.valid_rows(replay)
    live = replay.loc[inside].reset_index(drop=True)
    needed = sizes.good_rows + sizes.worse_rows
    if len(live) < needed:
        raise ValueError(f"{len(live)} replay flights inside the schema, {needed} needed")

    token = new_token()
    mon = launcher.monitor(workdir, token, env={"MONITOR_CHUNK_SIZE": str(sizes.chunk_size)})
    predictors = {
        release: launcher.predictor(
            workdir / "logs" / f"{release}.log",
            tag=tag,
            expected_version=version_of(tag),
            monitor_url=mon.url,
            token=token,
            spool_dir=workdir / f"spool-{release}",
            name=release,
            service="bentos.service:Predictor",
        )
        for release, tag in tags.items()
    }
    with launcher.running(mon, *predictors.values()):
        mon.start(timeout=60)
        # One at a time: registration order is the offline revision order.
        predictors["good"].start()
        wait_registered(mon, good)
        serve(predictors["good"], mon, live.iloc[: sizes.good_rows], schema)
        wait_known_good(mon, good)
        predictors[WORSE[0]].start()
        wait_registered(mon, worse)
        serve(predictors[WORSE[0]], mon, live.iloc[sizes.good_rows : needed], schema)

        def gate_decision() -> dict[str, Any] | None:
            decisions = httpx.get(f"{mon.url}/v1/decisions", params={"model": MODEL}).json()
            return next((d for d in decisions if d.get("fromVersion") == worse), None)

        decision = wait_for(f"a decision on {worse}", gate_decision)
        chunks = wait_for(
            "every served chunk analysed",
            lambda: _all_chunks(mon.url, needed // sizes.chunk_size),
        )
        versions = httpx.get(f"{mon.url}/v1/models").json()
        for v in versions:  # the listing leaves out the registration's hold-out metrics
            detail = f"{mon.url}/v1/models/{v['model']}/versions/{v['version']}"
            v["metrics"] = httpx.get(detail).json().get("metrics", {})
        exposition = httpx.get(f"{mon.url}/metrics").text
    offline = {"MONITOR_KUBERNETES": "off", "MONITOR_DB_PATH": str(mon.db_path), "COLUMNS": "160"}
    dry_run = run_tool("monitor", "reconcile", "--once", "--dry-run", env=offline)
    (workdir / "reconcile-dry-run.txt").write_text(dry_run)
    report = workdir / "reports" / f"{MODEL}.html"
    run_tool("monitor", "report", "--model", MODEL, "--out", report, env=offline)
    seen = (versions, chunks, decision, dry_run, exposition, report)
    return figures(tags, *seen, sizes, replay, live)


def _all_chunks(url: str, expected: int) -> list[dict[str, Any]] | None:
    chunks = httpx.get(f"{url}/v1/models/{MODEL}/chunks").json()
    return chunks if len(chunks) >= expected else None


def figures(
    tags: dict[str, str],
    versions: list[dict[str, Any]],
    chunks: list[dict[str, Any]],
    decision: dict[str, Any],
    dry_run: str,
    exposition: str,
    report: Path,
    sizes: Sizes,
    replay: pd.DataFrame,
    live: pd.DataFrame,
) -> dict[str, Any]:
    """What the run showed, as plain data (bench/results/flights.json)."""
    by_version = {v["version"]: v for v in versions if v["model"] == MODEL}
    per_release = {}
    for release, tag in tags.items():
        version = version_of(tag)
        mine = [c for c in chunks if c["version"] == version]
        est = [c["estimated"]["roc_auc"]["value"] for c in mine]
        real = [c["realized"].get("roc_auc") for c in mine]
        per_release[release] = {
            "tag": tag,
            "state": by_version.get(version, {}).get("state"),
            "holdout": by_version.get(version, {}).get("metrics", {}).get("reference"),
            "chunks": len(mine),
            "rows": sum(c["rows"] for c in mine),
            "mean_estimated_roc_auc": _mean(est),
            "mean_realized_roc_auc": _mean(real),
            # The known-good version re-scored in shadow on this version's own rows.
            "known_good_same_rows_estimated_roc_auc": _mean(
                [_estimate(c.get("known_good_estimated")) for c in mine]
            ),
            "known_good_same_rows_realized_roc_auc": _mean(
                [(c.get("known_good_realized") or {}).get("roc_auc") for c in mine]
            ),
        }
    return {
        "command": "make demo-flights",
        "sizes": asdict(sizes),
        "replay_flights": len(replay),
        "replay_flights_outside_schema": int(len(replay) - len(live)),
        "releases": per_release,
        "decision": {
            k: decision.get(k)
            for k in ("kind", "trigger", "fromVersion", "toVersion", "reason", "dryRun")
            if k in decision
        },
        "reconcile_dry_run": dry_run.splitlines(),
        "metrics_exported": f'model="{MODEL}"' in exposition,
        "report_bytes": report.stat().st_size,
    }


def _estimate(estimated: dict[str, Any] | None) -> Any:
    return ((estimated or {}).get("roc_auc") or {}).get("value")


def _mean(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="flights to sample (all)")
    parser.add_argument("--good-rows", type=int, default=Sizes.good_rows)
    parser.add_argument("--worse-rows", type=int, default=Sizes.worse_rows)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    sizes = Sizes(args.sample, args.good_rows, args.worse_rows)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="flights-demo-"))
    result = run(workdir, sizes)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    print(f"work directory (data, boosters, schema, logs, report): {workdir}")
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
