"""The monitor image's dependency set (docker/monitor.Dockerfile) is complete on its own.

The image installs `.[monitor]` from only the files the Dockerfile copies; no Docker engine
runs here, so the same install is done into a fresh virtual environment and the monitor's
modules are imported from it (this is how an undeclared NannyML import, e.g. statsmodels,
would surface).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "monitor.Dockerfile"


def copied_paths() -> list[str]:
    paths: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"^COPY\s+(.+)\s+\S+$", line.strip())
        if match:
            paths.extend(match.group(1).split())
    return paths


def test_monitor_runs_from_the_files_and_extra_its_image_installs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in copied_paths():
        target = src / rel.rstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = ROOT / rel.rstrip("/")
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target)
    assert (src / "monitor" / "api" / "app.py").exists() and (
        src / "contract" / "schema.py"
    ).exists()
    assert not (src / "bentos").exists(), "the monitor image carries no predictor code"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"{src}[monitor]"],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    code = (
        "import monitor.api.app, monitor.analysis.cycle, monitor.analysis.report, monitor.cli;"
        "import monitor.operator.reconciler, monitor.kube.target, monitor.loops.background;"
        "import importlib.util as u;"
        "assert u.find_spec('bentoml') is None, 'the monitor image must not need BentoML'"
    )
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "BENTOML_DO_NOT_TRACK": "true"}
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
