"""The CPUs this process may use: what `MONITOR_ANALYSIS_WORKERS=0` resolves to.

`os.cpu_count()` counts the node's CPUs, not the pod's: a container limited to 2 CPUs on a
64-core node would start 64 workers. Here the smaller of the CPU affinity
(`os.sched_getaffinity`, what cpusets and `taskset` allow) and the cgroup's quota
(`cpu.max` on cgroup v2, `cpu.cfs_quota_us / cpu.cfs_period_us` on v1), rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def cgroup_quota(v2: Path = CGROUP_V2, v1: tuple[Path, Path] = CGROUP_V1) -> float | None:
    """The cgroup's CPU quota in CPUs, None when unlimited or unreadable."""
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us, period_us = (int(p.read_text()) for p in v1)
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """At least 1: the CPUs of the affinity mask, capped by the cgroup quota (rounded up)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_quota()
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def analysis_workers(configured: int) -> int:
    """`MONITOR_ANALYSIS_WORKERS`, 0 resolved to the CPUs available."""
    return configured if configured > 0 else available_cpus()
