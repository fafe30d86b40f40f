"""Build the readers and exporters the settings ask for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, ExponentialBucketHistogramAggregation
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry

from otelkit._internal.bound_histograms import BoundHistograms
from otelkit._internal.overflow import OverflowWarner
from otelkit.settings import OtelkitSettings, OtlpSettings

INSTRUMENT_CLASSES = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)
# Prometheus computes rates from running totals; delta temporality would reset them every export.
CUMULATIVE = {cls: AggregationTemporality.CUMULATIVE for cls in INSTRUMENT_CLASSES}


def cardinality_limits(settings: OtelkitSettings) -> dict[type, int]:
    return {cls: settings.metrics.cardinality_limit for cls in INSTRUMENT_CLASSES}


class MergesBoundHistograms:
    """A reader of otelkit's own: the pipeline may hand it the bound histograms to merge."""

    bound_histograms: BoundHistograms | None = None

    def _with_bound_histograms(self, metrics_data: MetricsData) -> MetricsData:
        if self.bound_histograms is None or metrics_data is None:
            return metrics_data
        return self.bound_histograms.merge_into(metrics_data)


class WatchedPrometheusReader(MergesBoundHistograms, PrometheusMetricReader):
    """The exporter's pull reader, reporting cardinality overflow once."""

    def __init__(self, registry: CollectorRegistry, warner: OverflowWarner, limits: dict[type, int]) -> None:
        # Scope labels (otel_scope_name ...) would add three labels to every series the spec defines.
        super().__init__(registry=registry, scope_info_enabled=False, cardinality_limits=limits)
        self._warner = warner

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        metrics_data = self._with_bound_histograms(metrics_data)
        self._warner.check(metrics_data)
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing to flush: a pull reader collects when scraped.

        The base class would collect here and queue the result, and the next scrape would
        then expose every series twice, which Prometheus rejects as duplicate samples.
        """
        return True


class WatchedMetricExporter(MetricExporter):
    """Delegates to an OTLP exporter, reporting cardinality overflow once."""

    def __init__(self, inner: MetricExporter, warner: OverflowWarner) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._warner = warner

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self._warner.check(metrics_data)
        return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def otlp_connection(otlp: OtlpSettings, signal: str) -> dict[str, Any]:
    """Where and how the SDK's OTLP exporters of ``signal`` ("metrics", "traces") reach
    ``otlp.endpoint``: gRPC takes the endpoint as is, plain text for an http:// URL; HTTP takes
    the signal's path under it."""
    connection: dict[str, Any] = {
        "headers": {key: value.get_secret_value() for key, value in otlp.headers.items()},
        "timeout": otlp.timeout_seconds,
    }
    if otlp.protocol == "grpc":
        return {"endpoint": otlp.endpoint, "insecure": (otlp.endpoint or "").startswith("http://"), **connection}
    return {"endpoint": f"{otlp.endpoint}/v1/{signal}", **connection}


def otlp_metric_exporter(
    settings: OtelkitSettings, warner: OverflowWarner, *, explicit_histograms: bool = False
) -> MetricExporter:
    """``explicit_histograms`` overrides OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION
    (for an aggregation Prometheus also reads)."""
    otlp = settings.otlp
    aggregation: dict[type, Any] = {}
    if settings.metrics.histogram_aggregation == "exponential":
        aggregation = {Histogram: ExponentialBucketHistogramAggregation()}
    elif explicit_histograms:
        aggregation = {Histogram: ExplicitBucketHistogramAggregation()}
    exporter: MetricExporter
    if otlp.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        exporter = GrpcExporter(
            **otlp_connection(otlp, "metrics"),
            preferred_temporality=CUMULATIVE,
            preferred_aggregation=aggregation,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        exporter = HttpExporter(
            **otlp_connection(otlp, "metrics"),
            preferred_temporality=CUMULATIVE,
            preferred_aggregation=aggregation,
        )
    return WatchedMetricExporter(exporter, warner)


class OtlpPushReader(MergesBoundHistograms, PeriodicExportingMetricReader):
    """The periodic OTLP push."""

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        super()._receive_metrics(self._with_bound_histograms(metrics_data), timeout_millis, **kwargs)


def otlp_metric_reader(settings: OtelkitSettings, warner: OverflowWarner) -> PeriodicExportingMetricReader:
    return OtlpPushReader(
        otlp_metric_exporter(settings, warner),
        export_interval_millis=settings.otlp.export_interval_seconds * 1000,
        export_timeout_millis=settings.otlp.timeout_seconds * 1000,
        cardinality_limits=cardinality_limits(settings),
    )


def otlp_span_exporter(otlp: OtlpSettings, meter_provider: MeterProvider | None = None) -> SpanExporter:
    from otelkit._internal.span_exporters import grpc_span_exporter, http_span_exporter

    if otlp.protocol == "grpc":
        return grpc_span_exporter(otlp, meter_provider)
    return http_span_exporter(otlp, meter_provider)


__all__: Sequence[str] = [
    "CUMULATIVE",
    "WatchedMetricExporter",
    "WatchedPrometheusReader",
    "otlp_metric_reader",
    "otlp_span_exporter",
]
