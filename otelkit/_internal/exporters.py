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
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from otelkit._internal.bound_histograms import BoundHistograms
from otelkit._internal.log_once import log_once
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


def _headers(otlp: OtlpSettings) -> dict[str, str]:
    return {key: value.get_secret_value() for key, value in otlp.headers.items()}


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
            endpoint=otlp.endpoint,
            insecure=(otlp.endpoint or "").startswith("http://"),
            headers=_headers(otlp),
            timeout=otlp.timeout_seconds,
            preferred_temporality=CUMULATIVE,
            preferred_aggregation=aggregation,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        exporter = HttpExporter(
            endpoint=f"{otlp.endpoint}/v1/metrics",
            headers=_headers(otlp),
            timeout=otlp.timeout_seconds,
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


class SpanTooLarge(ValueError):
    """A span whose encoding alone is over ``otlp.max_request_bytes``: the ``error_type`` it is counted under."""


class ExportAbandoned(RuntimeError):
    """Spans of a split batch not sent after an earlier part failed: the ``error_type`` they are counted under."""


class _Encoded(list[ReadableSpan]):
    """A batch with its wire encoding, for the gRPC exporter's ``_translate_data``."""

    def __init__(self, spans: Sequence[ReadableSpan], payload: bytes) -> None:
        super().__init__(spans)
        self.payload = payload


def otlp_span_exporter(otlp: OtlpSettings, meter_provider: MeterProvider | None = None) -> SpanExporter:
    if otlp.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        from otelkit._internal.otlp_spans import encode_export_request, encode_export_requests

        class PreEncodedTraceStub:
            """``TraceService/Export`` taking the request as wire bytes (no serializer: gRPC sends them as is)."""

            def __init__(self, channel: Any) -> None:
                self.Export = channel.unary_unary(
                    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                    request_serializer=None,
                    response_deserializer=ExportTraceServiceResponse.FromString,
                )

        class FastEncodingGrpcExporter(GrpcExporter):
            """The SDK's gRPC exporter (retries, timeouts, TLS, reconnection) sending otelkit's wire encoding.

            The bytes go out as encoded: parsing them into the SDK's message only to serialise it
            again cost 12 us a span in the export thread of the process serving requests."""

            def _initialize_channel_and_stub(self) -> None:
                super()._initialize_channel_and_stub()
                self._client = PreEncodedTraceStub(self._channel)

            def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
                return data.payload if isinstance(data, _Encoded) else encode_export_request(data)

            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return self.export_encoded(spans, encode_export_request(spans))

            def export_encoded(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
                """Export ``spans`` as ``payload``, their encoding already made (with Sentry's, in one
                pass), in parts when it is over the request limit.

                After a part fails (its retries spent), the parts left are not sent: each would wait
                out the whole timeout again while the span queue fills. Their spans are counted as
                failed (``error_type="ExportAbandoned"``), as are spans too large for any request."""
                if len(payload) <= max_request_bytes or self._shutdown:
                    return super().export(_Encoded(spans, payload))
                requests, oversized = encode_export_requests(spans, max_request_bytes)
                if oversized:
                    self._count_failed(len(oversized), SpanTooLarge(f"encoded alone over {max_request_bytes} bytes"))
                    log_once(
                        "otlp-span-too-large",
                        "otelkit: %d span(s) left out of the OTLP export: each is larger than"
                        " otlp.max_request_bytes (%d) on its own, which the receiver would refuse; large"
                        " attribute values (stack traces, statements) are the usual cause, and"
                        " OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT bounds them",
                        len(oversized),
                        max_request_bytes,
                    )
                for sent, (part, part_payload) in enumerate(requests):
                    if super().export(_Encoded(part, part_payload)) is not SpanExportResult.SUCCESS:
                        abandoned = sum(len(rest) for rest, _ in requests[sent + 1 :])
                        if abandoned:
                            self._count_failed(abandoned, ExportAbandoned("an earlier part of the batch failed"))
                        return SpanExportResult.FAILURE
                return SpanExportResult.FAILURE if oversized else SpanExportResult.SUCCESS

            def _count_failed(self, count: int, error: Exception) -> None:
                """In the SDK's ``otel_sdk_exporter_span_exported_total``, with ``error_type`` the error's class."""
                with self._metrics.export_operation(count) as result:
                    result.error = error

        max_request_bytes = otlp.max_request_bytes
        return FastEncodingGrpcExporter(
            endpoint=otlp.endpoint,
            insecure=(otlp.endpoint or "").startswith("http://"),
            headers=_headers(otlp),
            timeout=otlp.timeout_seconds,
            meter_provider=meter_provider,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(
        endpoint=f"{otlp.endpoint}/v1/traces",
        headers=_headers(otlp),
        timeout=otlp.timeout_seconds,
        meter_provider=meter_provider,
    )


__all__: Sequence[str] = [
    "CUMULATIVE",
    "WatchedMetricExporter",
    "WatchedPrometheusReader",
    "otlp_metric_reader",
    "otlp_span_exporter",
]
