"""The monitor's Prometheus metrics (docs/contracts.md §6) on its own registry.

`registry.py`: `MonitorMetrics`, every metric of the contract on its own `CollectorRegistry` and the
methods that publish evidence to it; `fits.py`: the scrape-time collector of the analysis cache's
fit count; `candidates.py`: the candidate series; `process.py`: the process-wide `METRICS` and the
module-level functions (`records_ingested`, `set_leader`, ...) that the API, the loops and the
server call. Analysis and the operator sit below this package and never import it: the loops hand
them `METRICS`, which implements their protocols (`monitor.analysis.cycle.MetricsSink`,
`monitor.operator.ports.OperatorMetrics`). Labels are bounded: model, version, metric, segment,
feature, method, namespace, modelmonitor, reason, type; never ids or timestamps.
"""
