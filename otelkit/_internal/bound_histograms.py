"""Explicit-bucket histograms aggregated in process and merged into otelkit's readers' collections.

Why: the SDK's ``Histogram.record()`` copies and hashes the attributes, walks the reader
storages and offers an exemplar on every call, about 7 us of a small request here; the HTTP
duration histogram is recorded on every request. Like `bound.BoundCounter`, otelkit keeps one
cell per attribute set (bucket counts behind a lock, as prometheus_client's histogram child)
and the cells become a cumulative ``Histogram`` metric when a reader collects. The SDK has no
producer interface for that in Python, so otelkit's own readers (the Prometheus reader, the
OTLP push reader, the push-and-pull reader) merge the metric into what the SDK collected,
under the meter's scope; the pipeline uses cells only when every reader is one of those and
every reader wants explicit buckets with cumulative temporality, else the SDK histogram.

Exemplars follow ``OTEL_METRICS_EXEMPLAR_FILTER`` (``trace_based`` by default): the latest
sampled measurement per bucket is kept (`exemplars.LatestExemplarPerBucket`'s rule).
Memory: one cell per attribute set, bounded by the cardinality limit (then one overflow cell).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ScopeMetrics,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from otelkit._internal.bound import LabelledCells
from otelkit._internal.overflow import OverflowWarner

_Exemplar = tuple[float, int, int | None, int | None]
"""value, time, span id, trace id"""


def exemplar_filter() -> str:
    """The SDK's variable and values: ``trace_based`` (default), ``always_on``, ``always_off``."""
    value = os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based").strip().lower()
    return value if value in ("always_on", "always_off") else "trace_based"


class HistogramCell:
    """One attribute set's buckets, count, sum, min, max and latest exemplar per bucket."""

    __slots__ = (
        "_bounds",
        "_exemplars",
        "_filter",
        "_lock",
        "attributes",
        "buckets",
        "count",
        "max",
        "min",
        "start",
        "sum",
    )

    def __init__(self, attributes: dict[str, str | bool], bounds: Sequence[float], exemplars: str) -> None:
        self.attributes = attributes
        self._bounds = bounds
        self._filter = exemplars
        self.buckets = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.start = time.time_ns()
        self._exemplars: dict[int, _Exemplar] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, span_context: SpanContext | None = None) -> None:
        """``span_context``: the span to link as exemplar; the current span's when not given."""
        index = bisect.bisect_left(self._bounds, value)  # buckets are (previous, bound]
        exemplar = None
        if self._filter != "always_off":
            if span_context is None:
                span_context = trace.get_current_span().get_span_context()
            if span_context.trace_flags.sampled:
                exemplar = (value, time.time_ns(), span_context.span_id, span_context.trace_id)
            elif self._filter == "always_on":  # every measurement; linked to its span when there is one
                ids = (span_context.span_id, span_context.trace_id) if span_context.is_valid else (None, None)
                exemplar = (value, time.time_ns(), *ids)
        with self._lock:
            self.buckets[index] += 1
            self.count += 1
            self.sum += value
            if value < self.min:
                self.min = value
            if value > self.max:
                self.max = value
            if exemplar is not None:
                self._exemplars[index] = exemplar

    def point(self, now: int) -> HistogramDataPoint | None:
        with self._lock:
            if not self.count:
                return None
            buckets, count, total, low, high = list(self.buckets), self.count, self.sum, self.min, self.max
            kept = sorted(self._exemplars.items())
        exemplars = [Exemplar(None, value, at, span_id, trace_id) for _, (value, at, span_id, trace_id) in kept]
        return HistogramDataPoint(
            attributes=self.attributes,
            start_time_unix_nano=self.start,
            time_unix_nano=now,
            count=count,
            sum=total,
            bucket_counts=buckets,
            explicit_bounds=list(self._bounds),
            min=low,
            max=high,
            exemplars=exemplars,
        )


class BoundHistogram(LabelledCells[HistogramCell]):
    """A histogram whose attribute sets are bound once and then cost a dict lookup and a lock.

    >>> duration = histograms.create("jobs_seconds", ("queue",), ...)   # doctest: +SKIP
    >>> duration.cell(("emails",)).observe(0.25)                      # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        label_names: Sequence[str],
        *,
        unit: str,
        description: str,
        boundaries: Sequence[float],
        cardinality_limit: int,
        warner: OverflowWarner,
    ) -> None:
        super().__init__(name, label_names, cardinality_limit=cardinality_limit, warner=warner)
        self.unit = unit
        self.description = description
        self._bounds = tuple(boundaries)
        self._exemplars = exemplar_filter()

    def _new_cell(self, attributes: dict[str, str | bool]) -> HistogramCell:
        return HistogramCell(attributes, self._bounds, self._exemplars)

    def metric(self, now: int) -> Metric | None:
        """The cumulative metric of every cell that has observed something, or None."""
        points = [point for point in (cell.point(now) for cell in self.all_cells()) if point is not None]
        if not points:
            return None
        data = Histogram(data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE)
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


class BoundHistograms:
    """The bound histograms of one pipeline, under one instrumentation scope (the handle's meter)."""

    def __init__(self, scope: InstrumentationScope, *, cardinality_limit: int, warner: OverflowWarner) -> None:
        self.scope = scope
        self._limit = cardinality_limit
        self._warner = warner
        self._histograms: list[BoundHistogram] = []
        self._lock = threading.Lock()

    def create(
        self, name: str, label_names: Sequence[str], *, unit: str, description: str, boundaries: Sequence[float]
    ) -> BoundHistogram:
        histogram = BoundHistogram(
            name,
            label_names,
            unit=unit,
            description=description,
            boundaries=boundaries,
            cardinality_limit=self._limit,
            warner=self._warner,
        )
        with self._lock:
            self._histograms.append(histogram)
        return histogram

    def merge_into(self, metrics_data: MetricsData) -> MetricsData:
        """``metrics_data`` with the histograms added under the scope, in its first resource.

        The SDK collected the rest of the provider's metrics; a scope it already reports gets
        the histograms appended, else a scope of its own is added.
        """
        now = time.time_ns()
        with self._lock:
            histograms = list(self._histograms)
        produced = [metric for metric in (h.metric(now) for h in histograms) if metric is not None]
        if not produced or not metrics_data.resource_metrics:
            return metrics_data
        first, *rest = metrics_data.resource_metrics
        scopes = list(first.scope_metrics)
        for index, scope_metrics in enumerate(scopes):
            if scope_metrics.scope == self.scope:
                scopes[index] = ScopeMetrics(
                    scope=scope_metrics.scope,
                    metrics=[*scope_metrics.metrics, *produced],
                    schema_url=scope_metrics.schema_url,
                )
                break
        else:
            scopes.append(ScopeMetrics(scope=self.scope, metrics=produced, schema_url=self.scope.schema_url or ""))
        merged = type(first)(resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url)
        return MetricsData(resource_metrics=[merged, *rest])


_SDK_CELLS_KEPT = 10_000
"""Attribute dicts kept for reuse by `SdkHistogramCells`; past that, built per call (memory stays bounded)."""


class _SdkCell:
    __slots__ = ("_attributes", "_histogram")

    def __init__(self, histogram: Any, attributes: dict[str, str]) -> None:
        self._histogram = histogram
        self._attributes = attributes

    def observe(self, value: float, span_context: SpanContext | None = None) -> None:
        self._histogram.record(value, self._attributes)  # the SDK takes the exemplar's span from the context


class SdkHistogramCells:
    """The SDK's histogram behind `BoundHistogram`'s interface, where bound histograms cannot be merged."""

    def __init__(self, meter: Meter, name: str, label_names: Sequence[str], *, unit: str, description: str) -> None:
        self._histogram = meter.create_histogram(name, unit=unit, description=description)
        self._label_names = tuple(label_names)
        self._cells: dict[tuple[object, ...], _SdkCell] = {}

    def cell(self, values: tuple[object, ...]) -> _SdkCell:
        try:
            found = self._cells.get(values)
        except TypeError:  # an unhashable label value: recorded under its string form, as bound cells do
            return self.cell(tuple(str(value) for value in values))
        if found is None:
            attributes = {k: "" if v is None else str(v) for k, v in zip(self._label_names, values, strict=True)}
            # The SDK applies the cardinality limit; these cells only spare re-building the dict.
            found = _SdkCell(self._histogram, attributes)
            if len(self._cells) < _SDK_CELLS_KEPT:
                self._cells[values] = found
        return found


def histogram(
    meter: Meter,
    bound: BoundHistograms | None,
    name: str,
    label_names: Sequence[str],
    *,
    unit: str,
    description: str,
    boundaries: Sequence[float],
) -> BoundHistogram | SdkHistogramCells:
    """A bound histogram when the pipeline has them, else the SDK's; both record as
    ``histogram.cell(values).observe(seconds)``."""
    if bound is not None:
        return bound.create(name, label_names, unit=unit, description=description, boundaries=boundaries)
    return SdkHistogramCells(meter, name, label_names, unit=unit, description=description)
