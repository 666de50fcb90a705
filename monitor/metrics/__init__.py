"""The monitor's Prometheus metrics (docs/contracts.md §6) on its own registry.

`registry.py`: `MonitorMetrics`, every metric of the contract on its own `CollectorRegistry`
and the methods that publish evidence to it; `fits.py`: the scrape-time collector of the
analysis cache's fit count; `process.py`: the process-wide `METRICS` and the module-level
functions (`publish_chunk`, `record_rollback`, ...) that analysis, the API and the operator
call. Labels are bounded: model, version, metric, segment, feature, method, namespace,
modelmonitor, reason, type; never ids or timestamps.
"""
