"""Assert on metrics by the names and labels Prometheus will show, and on spans as plain dicts.

    def test_checkout_counts_payment(otelkit_capture):
        app = create_app()                 # calls otelkit.init(app) as in production
        TestClient(app).post("/pay", json={...})
        assert otelkit_capture.value("payment_requests_total", provider="stripe", status="success") == 1

While a capture is active, every `otelkit.init()` feeds in-memory readers instead of network
exporters and leaves OpenTelemetry's global providers alone; leaving the capture shuts the
handles down, so each test starts from nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from otelkit._internal import state
from otelkit._internal.exporters import WatchedPrometheusReader, cardinality_limits
from otelkit._internal.overflow import OverflowWarner
from otelkit.handle import Otelkit
from otelkit.settings import OtelkitSettings
from otelkit.testing.queries import HistogramSnapshot, Sample, SeriesQuery
from otelkit.testing.spans import span_to_dict


class MetricsCapture(SeriesQuery):
    """In-memory sinks for one test; query methods come from `SeriesQuery`."""

    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self._span_exporter = InMemorySpanExporter()
        self.handles: list[Otelkit] = []

    # -- the hook otelkit.init() calls -------------------------------------------------------
    def metric_reader(self, settings: OtelkitSettings, warner: OverflowWarner) -> MetricReader:
        """A Prometheus reader on a fresh registry: what tests read is what /metrics would show."""
        self._registry = CollectorRegistry()  # fresh per init: a reader binds to one provider
        return WatchedPrometheusReader(self._registry, warner, cardinality_limits(settings))

    def span_processor(self) -> SpanProcessor:
        return SimpleSpanProcessor(self._span_exporter)

    def adopt(self, handle: Otelkit) -> None:
        self.handles.append(handle)

    # -- what tests read --------------------------------------------------------------------
    def samples(self) -> list[Sample]:
        """Every sample of the exposition, collected now."""
        return [
            Sample(sample.name, dict(sample.labels), sample.value)
            for family in self._registry.collect()
            for sample in family.samples
        ]

    @property
    def spans(self) -> list[dict[str, Any]]:
        """Finished spans as plain dicts (name, kind, ids as hex, attributes, status, events)."""
        return [span_to_dict(span) for span in self._span_exporter.get_finished_spans()]

    def clear_spans(self) -> None:
        self._span_exporter.clear()


@contextlib.contextmanager
def capture() -> Iterator[MetricsCapture]:
    """Activate a capture; a handle live before it is set aside and restored after."""
    captured = MetricsCapture()
    with state.lock:
        previous_handle, previous_capture = state.current, state.capture
        state.current, state.capture = None, captured
    try:
        yield captured
    finally:
        for handle in captured.handles:
            handle.shutdown(timeout_seconds=5)
        with state.lock:
            state.current, state.capture = previous_handle, previous_capture


def reset_opentelemetry_globals() -> None:
    """Undo OpenTelemetry's set-once global providers, for tests of code that sets them.

    Uses the API's private module state, as opentelemetry-python's own test helpers do.
    """
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.util._once import Once

    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    trace._PROXY_TRACER_PROVIDER = trace.ProxyTracerProvider()
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()
    del metrics  # imported for its side effect of loading the API


__all__ = ["HistogramSnapshot", "MetricsCapture", "Sample", "capture", "reset_opentelemetry_globals"]
