"""`modelguard_monitor_calculator_fits_total` and its sibling `..._loads_total`, read from the
analysis cache at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily


class CalculatorFits:
    """`modelguard_monitor_calculator_fits_total`: model versions fitted by the analysis cache.

    Read at scrape time from the server's one `VersionCache` (its `fits` count), which the
    analysis loop and the reports share: a version is fitted once per process, so this stays
    at the number of versions analysed or reported on. 0 until a cache is attached.
    """

    name = "modelguard_monitor_calculator_fits"
    documentation = "Model versions whose calculators the analysis cache fitted (loop and reports)"

    loads_name = "modelguard_monitor_calculator_loads"
    loads_documentation = (
        "Model versions whose fitted calculators the analysis cache loaded from the store's"
        " saved fits instead of fitting them (a restart, another replica, an evicted version)"
    )

    def __init__(self) -> None:
        self.count: Callable[[], int] | None = None
        self.loads: Callable[[], int] | None = None

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation)
        yield CounterMetricFamily(self.loads_name, self.loads_documentation)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation)
        family.add_metric([], float(self.count() if self.count is not None else 0))
        yield family
        loads = CounterMetricFamily(self.loads_name, self.loads_documentation)
        loads.add_metric([], float(self.loads() if self.loads is not None else 0))
        yield loads
