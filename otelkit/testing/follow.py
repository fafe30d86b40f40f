"""Capturing from a handle that was live before the test: the usual app initialised at import.

``app = FastAPI(); otelkit.init(app)`` at module level builds the handle before any test runs,
and the app's middleware records into it. The capture cannot swap that handle, so it reads it:
an extra metric reader on the handle's provider for the test's duration, a span tap on its
tracer provider, and a baseline taken when the test starts, so each test still sees only what
happened during it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from otelkit._internal.exporters import WatchedPrometheusReader, cardinality_limits
from otelkit.handle import Otelkit
from otelkit.testing.queries import Sample

_CUMULATIVE_TYPES = ("counter", "histogram")
SampleKey = tuple[str, frozenset[tuple[str, str]]]


def read_live_handle(handle: Otelkit, registry: CollectorRegistry) -> Callable[[], None]:
    """Expose ``handle``'s metrics in ``registry`` from now on; returns the call that stops it."""
    reader = WatchedPrometheusReader(registry, handle.overflow_warner, cardinality_limits(handle.settings))
    handle.add_metric_reader(reader)

    def stop() -> None:
        if not handle.is_shut_down:  # a shut-down provider has already shut its readers down
            handle.remove_metric_reader(reader)

    return stop


class _SpanTap(SpanProcessor):
    """One per handle, added once (a tracer provider cannot remove processors): forwards ended
    spans to the active capture's processor, and to nothing between captures."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        target = self.target
        if target is not None:
            target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        target = self.target
        if target is not None:
            target.on_end(span)

    def shutdown(self) -> None:
        self.target = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_taps: weakref.WeakKeyDictionary[Otelkit, _SpanTap] = weakref.WeakKeyDictionary()


def tap_spans(handle: Otelkit, processor: SpanProcessor) -> Callable[[], None]:
    """Send ``handle``'s ended spans to ``processor`` too; returns the call that stops it."""
    tap = _taps.get(handle)
    if tap is None:
        tap = _taps[handle] = _SpanTap()
        handle.tracer_provider.add_span_processor(tap)
    tap.target = processor

    def stop() -> None:
        if tap.target is processor:
            tap.target = None

    return stop


def _key(name: str, labels: dict[str, str]) -> SampleKey:
    return name, frozenset(labels.items())


def baseline_of(families: Iterable[Metric]) -> dict[SampleKey, float]:
    """The counter and histogram values at the start of the test."""
    return {
        _key(sample.name, sample.labels): sample.value
        for family in families
        if family.type in _CUMULATIVE_TYPES
        for sample in family.samples
    }


def changes_since(families: Iterable[Metric], baseline: dict[SampleKey, float]) -> list[Sample]:
    """Samples as the test made them: counters and histograms less their baseline, series the
    test did not touch left out (as a fresh reader would not have them); gauges as they are."""
    samples: list[Sample] = []
    for family in families:
        if family.type not in _CUMULATIVE_TYPES:
            samples.extend(Sample(s.name, dict(s.labels), s.value) for s in family.samples)
            continue
        series: dict[frozenset[tuple[str, str]], list[Sample]] = {}
        touched: set[frozenset[tuple[str, str]]] = set()
        for sample in family.samples:
            identity = frozenset((k, v) for k, v in sample.labels.items() if k != "le")
            before = baseline.get(_key(sample.name, sample.labels))
            if before is None or sample.value != before:
                touched.add(identity)
            since = Sample(sample.name, dict(sample.labels), sample.value - (before or 0))
            series.setdefault(identity, []).append(since)
        samples.extend(sample for identity, members in series.items() if identity in touched for sample in members)
    return samples
