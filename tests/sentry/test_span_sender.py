"""Sentry's side of the one span pipeline: the fan-out exporter and Sentry's own bounded sender."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._internal.otlp_spans import encode_export_request
from otelkit.sentry.scrubbing import FILTERED, Scrubber
from otelkit.sentry.span_encoding import ScrubbedSpans
from otelkit.sentry.spans import SentryFanOut, SentrySpanSender, SentryTransport
from tests.support.otlp_sink import spans_of


class FakeTransport(SentryTransport):
    """Records payloads; `hang` makes ``send`` wait until `release` (a Sentry that does not answer)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.failures = 0
        self.closed = False
        self._open = threading.Event()
        self._open.set()
        self.in_send = threading.Event()

    def hang(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def send(self, payload: bytes) -> bool:
        self.in_send.set()
        self._open.wait(30)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("refused")
        self.sent.append(payload)
        return True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def processed(reader: InMemoryMetricReader, error_type: str | None) -> float:
    data = reader.get_metrics_data()
    return sum(
        point.value
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "otel.sdk.processor.span.processed"
        for point in metric.data.data_points
        if (point.attributes or {}).get("error.type") == error_type
    )


def sender_counted_in(transport: FakeTransport, provider: MeterProvider) -> SentrySpanSender:
    sender = SentrySpanSender(transport, max_queued_spans=10)
    sender.count_in(provider)
    return sender


def sending_to_hung_sentry(
    provider: MeterProvider, payload: bytes, spans: int
) -> tuple[FakeTransport, SentrySpanSender]:
    """A sender whose thread holds ``payload``, waiting on a Sentry that does not answer."""
    transport = FakeTransport()
    transport.hang()
    sender = sender_counted_in(transport, provider)
    sender.submit(payload, spans)
    assert transport.in_send.wait(5)
    return transport, sender


def test_a_hung_sentry_fills_only_its_bounded_queue_and_every_span_is_sent_or_counted(
    metrics: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    provider, reader = metrics
    transport, sender = sending_to_hung_sentry(provider, b"first", 4)
    for n in range(6):
        sender.submit(f"batch {n}".encode(), 4)  # never blocks: 2 fit beside it (8 spans), 4 are dropped
    assert not sender.flush(0.05)  # nothing moves while Sentry hangs
    transport.release()
    assert sender.flush(10)
    assert transport.sent == [b"first", b"batch 0", b"batch 1"]
    assert processed(reader, "queue_full") == 16
    assert processed(reader, None) == 12  # handed to Sentry
    sender.shutdown()


def test_a_failing_send_does_not_stop_the_sender(metrics: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    transport = FakeTransport()
    transport.failures = 1
    sender = sender_counted_in(transport, metrics[0])
    sender.submit(b"lost", 1)
    sender.submit(b"kept", 1)
    assert sender.flush(10)
    assert transport.sent == [b"kept"]
    sender.shutdown()


def test_shutdown_with_sentry_hung_stops_the_sender_and_counts_what_it_leaves(
    metrics: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    provider, reader = metrics
    transport, sender = sending_to_hung_sentry(provider, b"held", 1)
    sender.submit(b"queued", 2)
    sender.shutdown(timeout_seconds=0.05)  # returns although Sentry never answered
    sender.submit(b"late", 3)
    assert transport.closed
    assert processed(reader, "shutdown_timeout") == 2 and processed(reader, "already_shutdown") == 3
    transport.release()
    sender._thread.join(10)
    assert not sender._thread.is_alive() and transport.sent == [b"held"]  # the queued batch was not sent after all


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_sends_with_a_thread_of_its_own() -> None:
    transport = FakeTransport()
    sender = SentrySpanSender(transport, max_queued_spans=10)
    sender.submit(b"parent", 1)
    assert sender.flush(10)
    with sender._changed:  # forked while the parent holds the sender's lock: the child must not wait on it
        pid = os.fork()
    if pid == 0:  # the child
        ok = False
        try:
            sender.submit(b"child", 1)
            ok = sender.flush(10) and transport.sent == [b"parent", b"child"]
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    sender.shutdown()


def finished_spans() -> Sequence[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    for path in ("/items/1", "/items/2"):
        tracer.start_span("GET /items/{item_id}", attributes={"url.path": path, "client.address": "203.0.113.9"}).end()
    return exporter.get_finished_spans()


class RecordingExporter(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[Sequence[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(spans)
        return SpanExportResult.SUCCESS


class PreEncodingExporter(RecordingExporter):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[bytes] = []

    def export_encoded(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
        self.payloads.append(payload)
        return self.export(spans)


def sentry_addresses(payload: bytes) -> list[str]:
    request = ExportTraceServiceRequest.FromString(payload)
    return [
        attribute.value.string_value
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
        for attribute in span.attributes
        if attribute.key == "client.address"
    ]


@pytest.mark.parametrize("collector_kind", ["pre-encoding", "plain", "none"])
def test_the_fan_out_gives_the_collector_its_batch_and_sentry_the_scrubbed_one(collector_kind: str) -> None:
    spans = finished_spans()
    collector: Any = {"pre-encoding": PreEncodingExporter, "plain": RecordingExporter, "none": lambda: None}[
        collector_kind
    ]()
    transport = FakeTransport()
    sender = SentrySpanSender(transport, max_queued_spans=10)
    fan_out = SentryFanOut(collector, sender, ScrubbedSpans(Scrubber()))

    assert fan_out.export(spans) is SpanExportResult.SUCCESS
    assert sender.flush(10)
    (payload,) = transport.sent
    assert sentry_addresses(payload) == [FILTERED, FILTERED]
    if collector is not None:
        assert collector.batches == [spans]
    if collector_kind == "pre-encoding":
        assert collector.payloads == [encode_export_request(spans)]  # the collector's bytes, unscrubbed
    fan_out.shutdown()
    assert transport.closed


def test_a_failure_to_encode_for_sentry_costs_the_collector_nothing(
    metrics: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    class Broken(ScrubbedSpans):
        def attributes(self, parts: list[bytes], attributes: Any) -> bytes:
            raise RuntimeError("scrubber bug")

    spans = finished_spans()
    collector = PreEncodingExporter()
    transport = FakeTransport()
    sender = sender_counted_in(transport, metrics[0])
    fan_out = SentryFanOut(collector, sender, Broken(Scrubber()))
    assert fan_out.export(spans) is SpanExportResult.SUCCESS
    assert collector.batches == [spans] and sender.flush(10) and transport.sent == []
    assert processed(metrics[1], "encoding_failed") == len(spans)  # lost for Sentry, and said so
    fan_out.shutdown()


def padded_spans(count: int, padding: int) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    for index in range(count):
        tracer.start_span(f"work-{index}", attributes={"detail": "d" * padding, "client.address": "203.0.113.9"}).end()
    return list(exporter.get_finished_spans())


def test_sentry_gets_a_large_batch_in_requests_within_the_limit_and_a_span_too_large_is_counted(
    metrics: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    spans = padded_spans(20, 1000)
    huge = padded_spans(1, 10_000)[0]
    transport = FakeTransport()
    sender = SentrySpanSender(transport, max_queued_spans=100)
    sender.count_in(metrics[0])
    collector = PreEncodingExporter()
    fan_out = SentryFanOut(collector, sender, ScrubbedSpans(Scrubber()), max_request_bytes=5000)
    assert fan_out.export([*spans[:7], huge, *spans[7:]]) is SpanExportResult.SUCCESS
    assert sender.flush(10)
    assert len(transport.sent) >= 5 and all(len(payload) <= 5000 for payload in transport.sent)
    sent = [span for payload in transport.sent for span in spans_of([ExportTraceServiceRequest.FromString(payload)])]
    assert [span.name for span in sent] == [span.name for span in spans]  # each once, in order
    assert all(address == FILTERED for payload in transport.sent for address in sentry_addresses(payload))
    assert processed(metrics[1], "SpanTooLarge") == 1 and processed(metrics[1], "queue_full") == 0
    assert collector.batches == [[*spans[:7], huge, *spans[7:]]]  # the collector's exporter splits its own
    fan_out.shutdown()
