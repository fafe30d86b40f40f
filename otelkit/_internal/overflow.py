"""Say once, per metric, that its cardinality limit was reached.

The SDK folds extra attribute sets into one ``otel.metric.overflow=true`` series silently;
a team needs to hear about it, but once, not at every export.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry.sdk.metrics.export import MetricsData

OVERFLOW_ATTRIBUTE = "otel.metric.overflow"

logger = logging.getLogger("otelkit")


class OverflowWarner:
    """Scans exported metrics for the overflow series and logs one warning per metric name."""

    def __init__(self, cardinality_limit: int) -> None:
        self._cardinality_limit = cardinality_limit
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def check(self, metrics_data: MetricsData | None) -> None:
        if metrics_data is None:
            return
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name in self._warned:
                        continue
                    points = getattr(metric.data, "data_points", ())
                    if any(point.attributes.get(OVERFLOW_ATTRIBUTE) for point in points):
                        self.warn(metric.name)

    def warn(self, metric_name: str) -> None:
        with self._lock:
            if metric_name in self._warned:
                return
            self._warned.add(metric_name)
        logger.warning(
            "otelkit: metric %s reached its cardinality limit of %d attribute sets; further sets are "
            'folded into the series otel_metric_overflow="true". An unbounded label value (a user id, a '
            "raw path) is the usual cause; raise OTELKIT_METRICS__CARDINALITY_LIMIT only if it is not.",
            metric_name,
            self._cardinality_limit,
        )
