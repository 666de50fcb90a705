"""Series per model version on /metrics, defaults vs spec.metrics.perFeature (a count).

`python -m bench.series_count` publishes the realistic 10-feature chunk of
tests/monitor/metrics/evidence.py (with its gaps, chunking status and records) for 1 and 10
versions through `MonitorMetrics` and writes bench/results/series.json. The assertion
(<= 60 per version with the defaults) is tests/monitor/metrics/test_series_count.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from monitor.metrics.registry import MonitorMetrics
from tests.monitor.metrics.evidence import FEATURES
from tests.monitor.metrics.test_series_count import per_version, publish

OUT = Path(__file__).parent / "results" / "series.json"


def main() -> None:
    rows = []
    for per_feature in (False, True):
        for versions in (1, 10):
            m = MonitorMetrics()
            m.set_detail("rain", per_feature, frozenset({"roc_auc"}))
            publish(m, versions)
            counts = per_version(m)
            rows.append(
                {
                    "per_feature": per_feature,
                    "versions": versions,
                    "features": len(FEATURES),
                    "series_per_version": max(counts.values()),
                    "series_of_the_versions": sum(counts.values()),
                    "exposition_lines": len(m.exposition().decode().splitlines()),
                }
            )
    OUT.write_text(json.dumps({"command": "python -m bench.series_count", "rows": rows}, indent=2))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
