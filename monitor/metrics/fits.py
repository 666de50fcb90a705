"""`modelguard_monitor_calculator_fits_total`, read from the analysis cache at scrape time."""

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

    def __init__(self) -> None:
        self.count: Callable[[], int] | None = None

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation)
        family.add_metric([], float(self.count() if self.count is not None else 0))
        yield family
