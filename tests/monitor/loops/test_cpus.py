"""The CPUs MONITOR_ANALYSIS_WORKERS=0 resolves to (monitor/loops/cpus.py)."""

from __future__ import annotations

from pathlib import Path

from monitor.loops.cpus import analysis_workers, available_cpus, cgroup_quota


def test_zero_analysis_workers_is_one_per_cpu_the_cgroup_allows(tmp_path: Path) -> None:
    """MONITOR_ANALYSIS_WORKERS=0 resolves to the affinity capped by the cgroup quota."""
    v2 = tmp_path / "cpu.max"
    v2.write_text("150000 100000\n")
    assert cgroup_quota(v2, (tmp_path / "no", tmp_path / "no")) == 1.5
    v2.write_text("max 100000\n")
    assert cgroup_quota(v2, (tmp_path / "no", tmp_path / "no")) is None
    assert analysis_workers(3) == 3
    assert analysis_workers(0) == available_cpus() >= 1
