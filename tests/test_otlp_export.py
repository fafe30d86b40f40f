"""Push export: what leaves the SDK over OTLP (gRPC and HTTP) is cumulative and carries the resource."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import otelkit
from otelkit._internal.otlp_spans import encode_export_request as encode
from tests.support.otlp_sink import OtlpSink, start_grpc_sink, start_http_sink
from tests.support.ports import refused_port

CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@pytest.fixture(params=["grpc", "http/protobuf"])
def sink_endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[OtlpSink, str, str]]:
    sink = OtlpSink()
    if request.param == "grpc":
        server, port = start_grpc_sink(sink)
        yield sink, f"http://127.0.0.1:{port}", "grpc"
        server.stop(grace=None)
    else:
        http_server = start_http_sink(sink)
        yield sink, f"http://127.0.0.1:{http_server.server_address[1]}", "http/protobuf"
        http_server.shutdown()


def test_metrics_and_traces_are_pushed_cumulatively(sink_endpoint: tuple[OtlpSink, str, str]) -> None:
    sink, endpoint, protocol = sink_endpoint
    handle = otelkit.init(
        service={"name": "pusher", "version": "2.0"},
        otlp={"endpoint": endpoint, "protocol": protocol, "headers": "x-tenant=acme", "export_interval_seconds": 60},
        prometheus={"enabled": False},
        metrics={"system_metrics": False},
    )
    with handle.tracer.start_as_current_span("checkout"):
        with otelkit.track_generation("sdxl"):
            pass
        otelkit.record_payment("stripe", "success", 5, "EUR")
    handle.force_flush()
    otelkit.record_payment("stripe", "success", 5, "EUR")
    handle.shutdown()  # flushes the second, cumulative, export

    assert sink.wait_for(lambda: len(sink.metric_requests) >= 2 and sink.trace_requests)
    payments = sink.metrics()["payment_requests_total"]
    assert [m.sum.aggregation_temporality for m in payments] == [CUMULATIVE] * len(payments)
    assert [m.sum.is_monotonic for m in payments] == [True] * len(payments)
    assert payments[-1].sum.data_points[0].as_double == 2  # running total, not the delta since the last export
    durations = sink.metrics()["generation_duration_seconds"][-1].histogram
    assert durations.aggregation_temporality == CUMULATIVE
    assert 0.5 in list(durations.data_points[0].explicit_bounds)
    resource = {a.key: a.value.string_value for a in sink.metric_requests[0].resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "pusher" and resource["service.version"] == "2.0"
    assert "service.instance.id" in resource
    assert "checkout" in sink.span_names()
    assert all(headers.get("x-tenant") == "acme" for headers in sink.headers)


def test_histogram_exemplar_carries_the_sampled_trace(sink_endpoint: tuple[OtlpSink, str, str]) -> None:
    sink, endpoint, protocol = sink_endpoint
    handle = otelkit.init(
        otlp={"endpoint": endpoint, "protocol": protocol, "export_interval_seconds": 60},
        prometheus={"enabled": False},
        metrics={"system_metrics": False},
    )
    with handle.tracer.start_as_current_span("generate") as span, otelkit.track_generation("sdxl"):
        trace_id = span.get_span_context().trace_id
    with otelkit.track_generation("sdxl"):  # no span: offers no exemplar, replaces none
        pass
    handle.force_flush()
    handle.shutdown()  # a second export with no new sampled measurement
    assert sink.wait_for(lambda: len(sink.metrics().get("generation_duration_seconds", [])) >= 2)
    for metric in sink.metrics()["generation_duration_seconds"]:
        point = metric.histogram.data_points[0]
        # Kept across exports: Prometheus scrapes the collector between them at any moment.
        assert [int.from_bytes(e.trace_id, "big") for e in point.exemplars] == [trace_id]


def test_exponential_histograms_over_otlp(sink_endpoint: tuple[OtlpSink, str, str]) -> None:
    sink, endpoint, protocol = sink_endpoint
    handle = otelkit.init(
        otlp={"endpoint": endpoint, "protocol": protocol, "export_interval_seconds": 60},
        prometheus={"enabled": False},
        metrics={"system_metrics": False, "histogram_aggregation": "exponential"},
    )
    with otelkit.track_generation("sdxl"):
        pass
    handle.shutdown()
    assert sink.wait_for(lambda: sink.metric_requests)
    metric = sink.metrics()["generation_duration_seconds"][-1]
    assert metric.WhichOneof("data") == "exponential_histogram"
    assert metric.exponential_histogram.data_points[0].count == 1


def test_sampler_ratio_zero_exports_no_spans(sink_endpoint: tuple[OtlpSink, str, str]) -> None:
    sink, endpoint, protocol = sink_endpoint
    handle = otelkit.init(
        otlp={"endpoint": endpoint, "protocol": protocol, "metrics": False},
        tracing={"sample_ratio": 0.0},
        metrics={"system_metrics": False},
    )
    with handle.tracer.start_as_current_span("never-sampled") as span:
        assert not span.get_span_context().trace_flags.sampled
    handle.shutdown()
    assert sink.span_names() == [] and sink.metric_requests == []


def test_spans_dropped_while_the_collector_is_down_are_counted() -> None:
    from prometheus_client import generate_latest

    handle = otelkit.init(
        otlp={"endpoint": f"http://127.0.0.1:{refused_port()}", "timeout_seconds": 0.5, "metrics": False},
        tracing={"max_queue_size": 4, "max_export_batch_size": 4},
        metrics={"system_metrics": False},
    )
    for index in range(200):
        with handle.tracer.start_as_current_span(f"work-{index}"):
            pass
    registry = handle.prometheus_registry
    assert registry is not None
    text = generate_latest(registry).decode()
    dropped = [
        line
        for line in text.splitlines()
        if line.startswith("otel_sdk_processor_span_processed_total") and 'error_type="queue_full"' in line
    ]
    assert dropped and float(dropped[0].rsplit(" ", 1)[1]) >= 150
    handle.shutdown(timeout_seconds=2)


def traced(handle: otelkit.Otelkit, names: list[str], padding: int) -> None:
    for name in names:
        with handle.tracer.start_as_current_span(name, attributes={"padding": "p" * padding}):
            pass


def test_a_batch_over_the_request_limit_arrives_whole_in_parts(sink_endpoint: tuple[OtlpSink, str, str]) -> None:
    sink, endpoint, protocol = sink_endpoint
    handle = otelkit.init(
        otlp={"endpoint": endpoint, "protocol": protocol, "metrics": False, "max_request_bytes": 20_000},
        metrics={"system_metrics": False},
    )
    names = [f"work-{index}" for index in range(30)]
    traced(handle, names, 2000)
    handle.force_flush()
    assert sink.span_names() == names  # each once, in order
    assert len(sink.trace_requests) >= 3
    assert all(request.ByteSize() <= 20_000 for request in sink.trace_requests)
    assert exported_spans(handle) == {"": 30}


def test_the_default_limit_fits_a_grpc_receivers_default(grpc_sink: tuple[OtlpSink, str]) -> None:
    """512 spans of 10 kB (a stack trace each) make a 5 MB batch, which the receiver would refuse whole."""
    sink, endpoint = grpc_sink
    handle = otelkit.init(otlp={"endpoint": endpoint, "metrics": False}, metrics={"system_metrics": False})
    names = [f"failing-{index}" for index in range(512)]
    traced(handle, names, 10_000)
    handle.force_flush()
    assert sink.span_names() == names
    assert len(sink.trace_requests) == 2


def exported_spans(handle: otelkit.Otelkit) -> dict[str, float]:
    """``otel_sdk_exporter_span_exported_total`` by ``error_type`` ("" for exported)."""
    from prometheus_client import generate_latest

    assert handle.prometheus_registry is not None
    counts: dict[str, float] = {}
    for line in generate_latest(handle.prometheus_registry).decode().splitlines():
        if line.startswith("otel_sdk_exporter_span_exported_total"):
            match = re.search(r'error_type="([^"]*)"', line)
            error_type = match.group(1) if match else ""
            counts[error_type] = counts.get(error_type, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_spans_larger_than_any_request_are_left_out_counted_and_logged_once(
    sink_endpoint: tuple[OtlpSink, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sink, endpoint, protocol = sink_endpoint
    handle = otelkit.init(
        otlp={"endpoint": endpoint, "protocol": protocol, "metrics": False, "max_request_bytes": 20_000},
        metrics={"system_metrics": False},
    )
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        traced(handle, ["before-0"], 10)
        traced(handle, ["huge-0"], 30_000)
        traced(handle, ["after-0"], 10)
        handle.force_flush()
        assert exported_spans(handle).get("SpanTooLarge") == 1
        for name, padding in (("huge-1", 30_000), ("between-1", 10), ("huge-2", 30_000), ("after-1", 10)):
            traced(handle, [name], padding)  # two too large in one batch
        handle.force_flush()
        assert exported_spans(handle).get("SpanTooLarge") == 3
    assert sink.span_names() == ["before-0", "after-0", "between-1", "after-1"]
    warnings = [record.getMessage() for record in caplog.records if "max_request_bytes" in record.getMessage()]
    assert len(warnings) == 1 and "1 span(s)" in warnings[0] and "(20000)" in warnings[0]


def sdk_spans(names: list[str], padding: int) -> list[ReadableSpan]:
    provider = TracerProvider()
    tracer = provider.get_tracer("direct")
    spans = []
    for name in names:
        span = tracer.start_span(name, attributes={"padding": "p" * padding})
        span.end()
        spans.append(span)
    return spans  # type: ignore[return-value]


def test_the_exporter_says_failure_when_spans_were_left_out_and_splits_pre_encoded_batches(
    sink_endpoint: tuple[OtlpSink, str, str],
) -> None:
    """``export_encoded`` is the Sentry fan-out's way in: its batch is split as ``export``'s is."""
    from otelkit._internal.exporters import otlp_span_exporter
    from otelkit._internal.otlp_spans import encode_export_request
    from otelkit.settings import OtlpSettings

    sink, endpoint, protocol = sink_endpoint
    exporter = otlp_span_exporter(OtlpSettings(endpoint=endpoint, protocol=protocol, max_request_bytes=20_000))
    try:
        fitting = sdk_spans([f"fits-{index}" for index in range(30)], 2000)
        assert exporter.export_encoded(fitting, encode_export_request(fitting)) is SpanExportResult.SUCCESS
        assert sink.span_names() == [f"fits-{index}" for index in range(30)] and len(sink.trace_requests) >= 3
        with_huge = [*sdk_spans(["ok"], 10), *sdk_spans(["huge"], 30_000)]
        assert exporter.export(with_huge) is SpanExportResult.FAILURE
        assert sink.span_names()[-1] == "ok"
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_after_a_failed_part_the_rest_of_the_batch_is_abandoned_and_counted(protocol: str) -> None:
    """With the collector down, a batch in four parts costs one timeout, not four; every span is counted."""
    handle = otelkit.init(
        otlp={
            "protocol": protocol,
            "endpoint": f"http://127.0.0.1:{refused_port()}",
            "timeout_seconds": 0.5,
            "metrics": False,
            "max_request_bytes": 20_000,
        },
        metrics={"system_metrics": False},
    )
    traced(handle, [f"work-{index}" for index in range(30)], 2000)
    handle.force_flush()
    counts = exported_spans(handle)
    failed = {error_type: count for error_type, count in counts.items() if error_type not in ("", "ExportAbandoned")}
    assert len(failed) == 1 and 0 < next(iter(failed.values())) < 30  # the first part: sent, refused
    assert counts.get("ExportAbandoned", 0) == 30 - next(iter(failed.values()))  # the parts after it
    assert counts.get("", 0) == 0


def test_without_the_sdk_http_client_it_relies_on_the_sdks_own_exporter_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A later SDK release may rename the client: span export then keeps working, unsplit."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    from otelkit._internal.span_exporters import http_span_exporter
    from otelkit.settings import OtlpSettings

    original = trace_exporter.OTLPSpanExporter.__init__

    def without_client(self: trace_exporter.OTLPSpanExporter, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        self.renamed_client = self.__dict__.pop("_client")

    monkeypatch.setattr(trace_exporter.OTLPSpanExporter, "__init__", without_client)
    exporter = http_span_exporter(OtlpSettings(endpoint=f"http://127.0.0.1:{refused_port()}", protocol="http/protobuf"))
    assert type(exporter) is trace_exporter.OTLPSpanExporter
    assert exporter._endpoint.endswith("/v1/traces")
    exporter._client = exporter.renamed_client  # type: ignore[attr-defined]
    exporter.shutdown()


class RefusingHttpReceiver(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint answering every request with one status (400: as the collector a body
    over its limit; 503: a backend that is down), and saying when the first request came."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.first_request = threading.Event()

        class Refuse(BaseHTTPRequestHandler):
            server: RefusingHttpReceiver

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(self.server.status)
                self.send_header("content-length", "0")
                self.end_headers()
                self.server.first_request.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Refuse)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def refusing() -> Iterator[Callable[[int], RefusingHttpReceiver]]:
    servers: list[RefusingHttpReceiver] = []

    def start(status: int) -> RefusingHttpReceiver:
        servers.append(RefusingHttpReceiver(status))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [400, 503])
def test_spans_an_http_receiver_refuses_are_counted_as_failed(
    refusing: Callable[[int], RefusingHttpReceiver], status: int
) -> None:
    """At once (400) or after the retries the timeout allows (503)."""
    receiver = refusing(status)
    handle = otelkit.init(
        otlp={"endpoint": receiver.url, "protocol": "http/protobuf", "metrics": False, "timeout_seconds": 1},
        metrics={"system_metrics": False},
    )
    traced(handle, [f"work-{index}" for index in range(5)], 10)
    handle.force_flush()
    assert exported_spans(handle) == {"ExportRefused": 5}


def direct_exporter(
    protocol: str, endpoint: str, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> tuple[SpanExporter, InMemoryMetricReader]:
    """otelkit's span exporter with the SDK's own metrics on, read from an in-memory reader."""
    from opentelemetry.sdk.metrics import MeterProvider

    from otelkit._internal.exporters import otlp_span_exporter
    from otelkit.settings import OtlpSettings

    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    otlp = OtlpSettings(endpoint=endpoint, protocol=protocol, **settings)
    return otlp_span_exporter(otlp, MeterProvider(metric_readers=[reader])), reader


def read_exported(reader: InMemoryMetricReader) -> dict[str, float]:
    data = reader.get_metrics_data()
    counts: dict[str, float] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "otel.sdk.exporter.span.exported":
                    for point in metric.data.data_points:
                        error_type = str((point.attributes or {}).get("error.type", ""))
                        counts[error_type] = counts.get(error_type, 0) + point.value
    return counts


def test_shutdown_during_http_retries_counts_the_batch_as_failed(
    refusing: Callable[[int], RefusingHttpReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = refusing(503)
    exporter, reader = direct_exporter("http/protobuf", receiver.url, monkeypatch, timeout_seconds=30)
    results: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export(sdk_spans(["a", "b", "c"], 10))))
    worker.start()
    assert receiver.first_request.wait(10)
    exporter.shutdown()  # while it waits to retry
    worker.join(10)
    assert results == [SpanExportResult.FAILURE]
    # Counted as failed, never as exported: abandoned if shutdown cut the wait before a retry,
    # refused if it came as the client weighed retrying after a 503 (the SDK client's two ways out).
    counts = read_exported(reader)
    assert len(counts) == 1 and counts.get("ExportAbandoned", counts.get("ExportRefused")) == 3, counts


def test_shutdown_between_parts_counts_the_parts_left_as_abandoned(
    sink_endpoint: tuple[OtlpSink, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, endpoint, protocol = sink_endpoint
    exporter, reader = direct_exporter(protocol, endpoint, monkeypatch, max_request_bytes=20_000)
    send = exporter._send  # type: ignore[attr-defined]

    def send_then_shut_down(spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
        result: SpanExportResult = send(spans, payload)
        exporter.shutdown()
        return result

    monkeypatch.setattr(exporter, "_send", send_then_shut_down)
    spans = sdk_spans([f"work-{index}" for index in range(30)], 2000)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    sent = len(sink.span_names())
    assert 0 < sent < 30
    assert read_exported(reader) == {"": sent, "ExportAbandoned": 30 - sent}


def test_a_shut_down_exporter_sends_nothing_and_fails(
    sink_endpoint: tuple[OtlpSink, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from otelkit._internal import span_exporters
    from otelkit._internal.exporters import otlp_span_exporter
    from otelkit.settings import OtlpSettings

    sink, endpoint, protocol = sink_endpoint
    exporter = otlp_span_exporter(OtlpSettings(endpoint=endpoint, protocol=protocol, max_request_bytes=20_000))
    encodings = []
    monkeypatch.setattr(
        span_exporters, "encode_export_request", lambda spans: encodings.append(len(spans)) or encode(spans)
    )
    assert exporter.export(sdk_spans(["sent"], 10)) is SpanExportResult.SUCCESS
    assert encodings == [1]  # otelkit's encoder, over either protocol
    exporter.shutdown()
    assert exporter.export(sdk_spans(["late"], 10)) is SpanExportResult.FAILURE
    assert exporter.export(sdk_spans([f"late-{n}" for n in range(30)], 2000)) is SpanExportResult.FAILURE
    assert sink.span_names() == ["sent"]


def test_a_batch_that_cannot_be_encoded_is_counted_as_failed(
    grpc_sink: tuple[OtlpSink, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from otelkit._internal import span_exporters

    _, endpoint = grpc_sink
    handle = otelkit.init(otlp={"endpoint": endpoint, "metrics": False}, metrics={"system_metrics": False})

    def broken(spans: object) -> bytes:
        raise ValueError("unencodable")

    monkeypatch.setattr(span_exporters, "encode_export_request", broken)
    traced(handle, ["a", "b"], 10)
    handle.force_flush()
    assert exported_spans(handle) == {"ValueError": 2}
