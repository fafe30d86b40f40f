"""One aggregation for both metric outlets: the periodic OTLP push and the embedded /metrics.

Why: with a reader per outlet the SDK aggregates every measurement twice (attribute hashing,
bucket search, exemplar offer), about 14 us of a small request's 60 here. Both outlets want the
same cumulative explicit-bucket data, so a scrape collects from the push reader too, and its
result goes to the Prometheus exporter's collector instead of the OTLP exporter; a thread-local
flag tells the two apart, so a scrape during a push takes nothing from it.

One thing a collection does consume: the SDK's default exemplar reservoirs (counters, histograms
outside otelkit's seconds view) empty themselves when collected, and the Prometheus text format
shows no exemplars. So the exemplars a scrape collected are kept and carried into the next push,
the latest per histogram bucket or one per counter series (the SDK's own reservoir sizes), and
memory stays bounded by the series the cardinality limit allows.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricsData,
    PeriodicExportingMetricReader,
)
from prometheus_client import CollectorRegistry

from otelkit._internal.exporters import MergesBoundHistograms, cardinality_limits, otlp_metric_exporter
from otelkit._internal.overflow import OverflowWarner
from otelkit.settings import OtelkitSettings

_SeriesKey = tuple[Any, ...]


def _series_key(scope: Any, metric: Any, attributes: Any) -> _SeriesKey:
    """One series: its scope (name, version, schema), metric name and data type, and point attributes."""
    scope_id = (scope.name, scope.version, scope.schema_url)
    return scope_id, metric.name, type(metric.data).__name__, repr(sorted((attributes or {}).items()))


def _latest(exemplars: Sequence[Exemplar], point: Any) -> list[Exemplar]:
    """What the SDK's reservoir would hold: the latest per histogram bucket, else the latest one."""
    if isinstance(point, HistogramDataPoint):
        by_bucket: dict[int, Exemplar] = {}
        for exemplar in sorted(exemplars, key=lambda e: e.time_unix_nano):
            by_bucket[bisect.bisect_left(point.explicit_bounds, exemplar.value)] = exemplar
        return [by_bucket[index] for index in sorted(by_bucket)]
    return [max(exemplars, key=lambda e: e.time_unix_nano)] if exemplars else []


class PushAndPullReader(MergesBoundHistograms, PeriodicExportingMetricReader):
    def __init__(self, settings: OtelkitSettings, warner: OverflowWarner, registry: CollectorRegistry) -> None:
        super().__init__(
            otlp_metric_exporter(settings, warner, explicit_histograms=True),
            export_interval_millis=settings.otlp.export_interval_seconds * 1000,
            export_timeout_millis=settings.otlp.timeout_seconds * 1000,
            cardinality_limits=cardinality_limits(settings),
        )
        # The Prometheus exporter's own translation (names, units, target_info); its reader class
        # would bring a second aggregation, so only its collector is used.
        from opentelemetry.exporter.prometheus import _CustomCollector

        self._scrape_outlet = _CustomCollector(scope_info_enabled=False)
        self._registry = registry
        self._warner = warner
        self._scraping = threading.local()
        self._carried: dict[_SeriesKey, list[Exemplar]] = {}
        self._carried_lock = threading.Lock()
        registry.register(self._scrape_outlet)  # before the callback: the registry's describe must not collect
        self._scrape_outlet._callback = self._collect_for_scrape

    def _collect_for_scrape(self) -> None:
        self._scraping.active = True
        try:
            self.collect()
        finally:
            self._scraping.active = False

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        metrics_data = self._with_bound_histograms(metrics_data)
        if getattr(self._scraping, "active", False):
            if metrics_data is not None:
                self._warner.check(metrics_data)
                self._keep_exemplars(metrics_data)
                self._scrape_outlet.add_metrics_data(metrics_data)
            return
        super()._receive_metrics(self._with_kept_exemplars(metrics_data), timeout_millis, **kwargs)

    def _keep_exemplars(self, metrics_data: MetricsData) -> None:
        with self._carried_lock:
            for resource_metrics in metrics_data.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        for point in getattr(metric.data, "data_points", ()):
                            exemplars = getattr(point, "exemplars", None)
                            if exemplars:
                                key = _series_key(scope_metrics.scope, metric, point.attributes)
                                self._carried[key] = _latest([*self._carried.get(key, ()), *exemplars], point)

    def _with_kept_exemplars(self, metrics_data: MetricsData | None) -> MetricsData | None:
        with self._carried_lock:
            carried, self._carried = self._carried, {}
        if not carried or metrics_data is None:
            return metrics_data
        return dataclasses.replace(
            metrics_data,
            resource_metrics=[
                dataclasses.replace(
                    resource_metrics,
                    scope_metrics=[
                        dataclasses.replace(
                            scope_metrics,
                            metrics=[
                                self._metric_with(metric, scope_metrics.scope, carried)
                                for metric in scope_metrics.metrics
                            ],
                        )
                        for scope_metrics in resource_metrics.scope_metrics
                    ],
                )
                for resource_metrics in metrics_data.resource_metrics
            ],
        )

    @staticmethod
    def _metric_with(metric: Any, scope: Any, carried: dict[_SeriesKey, list[Exemplar]]) -> Any:
        points = getattr(metric.data, "data_points", None)
        if not points:
            return metric
        merged = []
        for point in points:
            kept = carried.get(_series_key(scope, metric, point.attributes))
            if kept and hasattr(point, "exemplars"):
                point = dataclasses.replace(point, exemplars=_latest([*kept, *point.exemplars], point))
            merged.append(point)
        return dataclasses.replace(metric, data=dataclasses.replace(metric.data, data_points=merged))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        super().shutdown(timeout_millis=timeout_millis, **kwargs)
        with contextlib.suppress(KeyError):  # as the Prometheus reader does: no scrapes of a dead pipeline
            self._registry.unregister(self._scrape_outlet)
