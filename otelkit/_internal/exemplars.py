"""Keep each histogram bucket's latest exemplar until a newer one replaces it.

Why: the SDK's aligned-bucket reservoir empties itself at every collection, so an exemplar
is exported once and the next export (every ``otlp.export_interval_seconds``) carries the
same cumulative bucket without it. The collector's Prometheus exporter keeps only the latest
point, so Prometheus saw an exemplar only when a scrape fell between those two exports:
most were lost. prometheus_client keeps the last exemplar per bucket; so does this.
Memory: one exemplar per bucket per series, bounded by the cardinality limit.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Exemplar, ExemplarReservoir
from opentelemetry.util.types import Attributes


class LatestExemplarPerBucket(ExemplarReservoir):
    def __init__(self, boundaries: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._boundaries = list(boundaries)
        self._latest: dict[int, tuple[float, int, Attributes, int | None, int | None]] = {}
        self._lock = threading.Lock()

    def offer(self, value: float, time_unix_nano: int, attributes: Attributes, context: Context) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        ids = (span_context.span_id, span_context.trace_id) if span_context.is_valid else (None, None)
        index = bisect.bisect_left(self._boundaries, value)  # buckets are (previous, boundary]
        with self._lock:
            self._latest[index] = (value, time_unix_nano, attributes, *ids)

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        with self._lock:
            latest = sorted(self._latest.items())
        exemplars = []
        for _, (value, time_unix_nano, attributes, span_id, trace_id) in latest:
            # Attributes already on the data point are dropped from the exemplar, as the spec says.
            extra = {k: v for k, v in attributes.items() if k not in (point_attributes or {})} if attributes else None
            exemplars.append(Exemplar(extra, value, time_unix_nano, span_id, trace_id))
        return exemplars


def latest_exemplar_factory(aggregation_type: type) -> type[LatestExemplarPerBucket]:
    """The ``exemplar_reservoir_factory`` of otelkit's explicit-bucket histogram view."""
    return LatestExemplarPerBucket
