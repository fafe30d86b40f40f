"""Assemble the meter and tracer providers from settings: resource, views, readers, exporters."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry

from otelkit._internal.bound_histograms import BoundHistograms
from otelkit._internal.exemplars import latest_exemplar_factory
from otelkit._internal.exporters import (
    MergesBoundHistograms,
    WatchedPrometheusReader,
    cardinality_limits,
    otlp_metric_reader,
    otlp_span_exporter,
)
from otelkit._internal.overflow import OverflowWarner
from otelkit._internal.push_and_pull import PushAndPullReader
from otelkit._internal.sampling import ParentBasedRatio
from otelkit._internal.state import CaptureHook
from otelkit.settings import OtelkitSettings

if TYPE_CHECKING:
    from otelkit.sentry.client import SentryBridge

METER_NAME = "otelkit"
"""The scope of otelkit's own instruments (and of its bound histograms)."""

_INSTANCE_ID = str(uuid.uuid4())
_INSTANCE_PID = os.getpid()


def instance_id() -> str:
    """A ``service.instance.id`` unique to this process (a forked worker gets its own)."""
    global _INSTANCE_ID, _INSTANCE_PID
    if os.getpid() != _INSTANCE_PID:
        _INSTANCE_ID, _INSTANCE_PID = str(uuid.uuid4()), os.getpid()
    return _INSTANCE_ID


def build_resource(settings: OtelkitSettings) -> Resource:
    """Service identity; ``Resource.create`` also merges ``OTEL_RESOURCE_ATTRIBUTES`` beneath it."""
    service = settings.service
    return Resource.create(
        {
            "service.name": service.name,
            "service.version": service.version,
            "deployment.environment": service.environment,
            "deployment.environment.name": service.environment,
            "service.instance.id": instance_id(),
        }
    )


_DUPLICATE_HTTP_METRICS = "http.server.*"


class _AllSecondsHistogramsBut(View):
    """Matches what its arguments say except ``http.server.*`` instruments.

    The SDK gives an instrument one stream per matching View, so the drop View below would not
    stop a second, bucketed stream of the same instrument; the public View has no exclusion.
    """

    def _match(self, instrument: Any) -> bool:
        return not fnmatchcase(instrument.name, _DUPLICATE_HTTP_METRICS) and super()._match(instrument)


def histogram_views(settings: OtelkitSettings) -> list[View]:
    """Seconds-based histograms get the spec's buckets (the 0.5 s boundary the SLA needs); the
    ``http.server.*`` metrics of HTTP instrumentation libraries are dropped (see below)."""
    views = duplicate_http_views(settings)
    if settings.metrics.histogram_aggregation == "exponential":
        return views  # the OTLP exporter's preferred aggregation makes them exponential
    buckets = ExplicitBucketHistogramAggregation(boundaries=settings.prometheus.default_buckets)
    seconds_histograms = _AllSecondsHistogramsBut if views else View
    views.append(
        seconds_histograms(
            instrument_type=Histogram,
            instrument_unit="s",
            aggregation=buckets,
            exemplar_reservoir_factory=latest_exemplar_factory,
        )
    )
    return views


def duplicate_http_views(settings: OtelkitSettings) -> list[View]:
    """Drop the ``http.server.*`` metrics of HTTP instrumentation libraries (the ASGI/FastAPI
    instrumentations, FastAPI's own telemetry, ``opentelemetry-instrument``): they duplicate
    ``http_request_duration_seconds`` in another shape. ``http.library_metrics`` keeps them."""
    if settings.http.library_metrics:
        return []
    return [View(instrument_name=_DUPLICATE_HTTP_METRICS, aggregation=DropAggregation())]


_SELF_METRICS_VARIABLE = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


@contextlib.contextmanager
def sdk_self_metrics(enabled: bool) -> Iterator[None]:
    """Turn on the SDK's own metrics for the span processor and exporter built inside.

    They count what the pipeline drops (``otel_sdk_processor_span_processed_total`` with
    ``error_type="queue_full"``) and what export failed (``otel_sdk_exporter_span_exported_total``
    with an ``error_type``): a collector outage must show up as numbers, not vanish. The SDK
    reads the switch only from its environment variable at construction, so it is set for
    that moment; an explicit value of the variable wins.
    """
    if not enabled or _SELF_METRICS_VARIABLE in os.environ:
        yield
        return
    os.environ[_SELF_METRICS_VARIABLE] = "true"
    try:
        yield
    finally:
        os.environ.pop(_SELF_METRICS_VARIABLE, None)


@dataclass
class Pipeline:
    """The providers and what feeds them; `shutdown` flushes traces before metrics."""

    meter_provider: MeterProvider
    tracer_provider: TracerProvider
    warner: OverflowWarner
    prometheus_registry: CollectorRegistry | None = None
    readers: list[MetricReader] = field(default_factory=list)
    exporting: bool = False
    """True when OTLP exporters push to ``otlp.endpoint`` (never under the pytest capture)."""
    sentry: SentryBridge | None = None
    """Sentry, when started: it shares the tracer provider's batch processor with the collector."""
    bound_histograms: BoundHistograms | None = None
    """In-process histograms every reader merges; None when a reader could not (then the SDK's)."""

    def force_flush(self, timeout_seconds: float) -> bool:
        traces = self.tracer_provider.force_flush(int(timeout_seconds * 1000))
        if self.sentry is not None:
            self.sentry.flush(timeout_seconds)
        return self.meter_provider.force_flush(int(timeout_seconds * 1000)) and traces

    def shutdown(self, timeout_seconds: float) -> None:
        self.tracer_provider.shutdown()
        if self.sentry is not None:
            self.sentry.close(timeout_seconds)
        self.meter_provider.shutdown(timeout_millis=timeout_seconds * 1000)


def _otlp_env_wants_exponential() -> bool:
    """The OTLP exporter's own variable: its histograms would then differ from what Prometheus reads."""
    variable = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
    return os.environ.get(variable, "").strip().lower() == "base2_exponential_bucket_histogram"


def build_pipeline(
    settings: OtelkitSettings, capture: CaptureHook | None = None, sentry: SentryBridge | None = None
) -> Pipeline:
    """With a pytest ``capture``, its in-memory sinks replace the OTLP exporters: no traffic leaves.

    With ``sentry``, its ratio is the sampler's (one decision for the collector and Sentry), and one
    batch processor feeds both (Sentry's own bounded queue behind it: a slow Sentry holds up nothing).
    """
    resource = build_resource(settings)
    warner = OverflowWarner(settings.metrics.cardinality_limit)
    readers: list[MetricReader] = []
    span_processors: list[SpanProcessor] = []
    if capture is not None:
        readers.append(capture.metric_reader(settings, warner))
        span_processors.append(capture.span_processor())
    registry: CollectorRegistry | None = None
    pushing = capture is None and settings.otlp.endpoint is not None
    pushing_metrics = pushing and settings.otlp.metrics
    if settings.prometheus.enabled:
        registry = CollectorRegistry(auto_describe=True)
        explicit = settings.metrics.histogram_aggregation == "explicit" and not _otlp_env_wants_exponential()
        if pushing_metrics and explicit:
            readers.append(PushAndPullReader(settings, warner, registry))  # one aggregation for both outlets
            pushing_metrics = False
        else:
            readers.append(WatchedPrometheusReader(registry, warner, cardinality_limits(settings)))
    if pushing_metrics:
        readers.append(otlp_metric_reader(settings, warner))

    meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=histogram_views(settings))
    bound_histograms = _bound_histograms(settings, readers, warner)

    tracing = settings.tracing
    ratio = sentry.sample_ratio if sentry is not None else tracing.sample_ratio
    sampler = ParentBasedRatio(ratio if tracing.enabled else 0.0)
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    if tracing.enabled:
        with sdk_self_metrics(settings.metrics.sdk_self_metrics):
            exporter = otlp_span_exporter(settings.otlp, meter_provider) if pushing and settings.otlp.traces else None
            if sentry is not None:
                exporter = sentry.span_exporter(exporter) or exporter
            if exporter is not None:
                tracer_provider.add_span_processor(
                    BatchSpanProcessor(
                        exporter,
                        max_queue_size=tracing.max_queue_size,
                        max_export_batch_size=min(tracing.max_export_batch_size, tracing.max_queue_size),
                        export_timeout_millis=settings.otlp.timeout_seconds * 1000,
                        meter_provider=meter_provider,
                    )
                )
            if sentry is not None:
                sentry.count_spans_in(meter_provider)
    return Pipeline(
        meter_provider,
        tracer_provider,
        warner,
        registry,
        readers,
        exporting=pushing,
        sentry=sentry,
        bound_histograms=bound_histograms,
    )


def _bound_histograms(
    settings: OtelkitSettings, readers: list[MetricReader], warner: OverflowWarner
) -> BoundHistograms | None:
    """Bound histograms when every reader merges them and wants cumulative explicit buckets
    (otelkit's readers are all cumulative; buckets are explicit unless a setting or the OTLP
    exporter's variable asks for exponential ones)."""
    explicit = settings.metrics.histogram_aggregation == "explicit" and not _otlp_env_wants_exponential()
    if not explicit or not all(isinstance(reader, MergesBoundHistograms) for reader in readers):
        return None
    histograms = BoundHistograms(
        InstrumentationScope(METER_NAME), cardinality_limit=settings.metrics.cardinality_limit, warner=warner
    )
    for reader in readers:
        reader.bound_histograms = histograms  # type: ignore[attr-defined]
    return histograms
