"""Assert on metrics by the names and labels Prometheus will show, and on spans as plain dicts.

    def test_checkout_counts_payment(otelkit_capture):
        app = create_app()                 # calls otelkit.init(app) as in production
        TestClient(app).post("/pay", json={...})
        assert otelkit_capture.value("payment_requests_total", provider="stripe", status="success") == 1

While a capture is active, every `otelkit.init()` feeds in-memory readers instead of network
exporters and leaves OpenTelemetry's global providers alone; leaving the capture shuts the
handles down, so each test starts from nothing.

An app initialised at import (``app = FastAPI(); otelkit.init(app)`` at module level) has its
handle before any test runs: the capture then reads that handle for the test's duration (an
extra in-memory reader and a span tap, see `otelkit.testing.follow`) and reports only what
happened during the test. That handle keeps its own exporters. Callbacks registered with
`otelkit.observe_queue_depth()` / `observe_active_users()` during a test are dropped after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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
from otelkit.instruments.business import ACTIVE_USERS_CALLBACKS, QUEUE_DEPTH_CALLBACKS
from otelkit.settings import OtelkitSettings
from otelkit.testing.follow import baseline_of, changes_since, read_live_handle, tap_spans
from otelkit.testing.queries import HistogramSnapshot, Sample, SeriesQuery
from otelkit.testing.spans import span_to_dict


class MetricsCapture(SeriesQuery):
    """In-memory sinks for one test; query methods come from `SeriesQuery`."""

    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self._span_exporter = InMemorySpanExporter()
        self.handles: list[Otelkit] = []
        self._baseline: dict[Any, float] | None = None
        """Set while reading a handle that was live before the capture: values count from here."""
        self._stop_following: list[Callable[[], None]] = []

    # -- the hook otelkit.init() calls -------------------------------------------------------
    def metric_reader(self, settings: OtelkitSettings, warner: OverflowWarner) -> MetricReader:
        """A Prometheus reader on a fresh registry: what tests read is what /metrics would show."""
        self._registry = CollectorRegistry()  # fresh per init: a reader binds to one provider
        self._baseline = None
        return WatchedPrometheusReader(self._registry, warner, cardinality_limits(settings))

    def span_processor(self) -> SpanProcessor:
        return SimpleSpanProcessor(self._span_exporter)

    def adopt(self, handle: Otelkit) -> None:
        self.handles.append(handle)

    def follow(self, handle: Otelkit) -> None:
        """Read ``handle``, live before the capture started, from now until `stop_following`."""
        self._registry = CollectorRegistry()
        self._stop_following = [read_live_handle(handle, self._registry), tap_spans(handle, self.span_processor())]
        self._baseline = baseline_of(self._registry.collect())

    def stop_following(self) -> None:
        for stop in self._stop_following:
            stop()
        self._stop_following = []

    # -- what tests read --------------------------------------------------------------------
    def samples(self) -> list[Sample]:
        """Every sample of the exposition, collected now."""
        if self._baseline is not None:
            return changes_since(self._registry.collect(), self._baseline)
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
    """Activate a capture. A handle live before it stays live and is read for the capture's
    duration (`MetricsCapture.follow`); handles created inside are shut down at the end."""
    captured = MetricsCapture()
    with state.lock:
        live, previous_capture = state.current, state.capture
        state.capture = captured
        if live is not None:
            captured.follow(live)
    try:
        with preserved_callbacks():
            yield captured
    finally:
        captured.stop_following()
        for handle in captured.handles:
            handle.shutdown(timeout_seconds=5)
        with state.lock:
            state.capture = previous_capture
            if state.current is not None and state.current.is_shut_down:
                state.current = None


@contextlib.contextmanager
def preserved_callbacks() -> Iterator[None]:
    """Drop the `otelkit.observe_queue_depth()` / `observe_active_users()` callbacks registered
    inside the block when it ends (they are process-wide, so they would outlive a test)."""
    registries = (ACTIVE_USERS_CALLBACKS, QUEUE_DEPTH_CALLBACKS)
    saved = [registry.snapshot() for registry in registries]
    try:
        yield
    finally:
        for registry, callbacks in zip(registries, saved, strict=True):
            registry.restore(callbacks)


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


__all__ = [
    "HistogramSnapshot",
    "MetricsCapture",
    "Sample",
    "capture",
    "preserved_callbacks",
    "reset_opentelemetry_globals",
]
