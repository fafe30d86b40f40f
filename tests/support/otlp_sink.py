"""An OTLP receiver double for tests of the SDK's export path (the real collector is tested end to end).

It decodes requests with the OTLP protobuf definitions, exactly as a collector would reject
malformed ones, and keeps what arrived for assertions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def spans_of(requests: Iterable[trace_service_pb2.ExportTraceServiceRequest]) -> list[Any]:
    """The span messages of OTLP trace requests, in order."""
    return [
        span
        for request in requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


class OtlpSink:
    def __init__(self) -> None:
        self.metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.trace_requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.received = threading.Condition()

    def add(self, request: object, headers: dict[str, str]) -> None:
        with self.received:
            if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
                self.metric_requests.append(request)
            else:
                self.trace_requests.append(request)  # type: ignore[arg-type]
            self.headers.append(headers)
            self.received.notify_all()

    def wait_for(self, predicate: object, timeout: float = 10.0) -> bool:
        with self.received:
            return self.received.wait_for(predicate, timeout)  # type: ignore[arg-type]

    def metrics(self) -> dict[str, list[object]]:
        """Metric name -> every metric message received under it, in arrival order."""
        found: dict[str, list[object]] = {}
        for request in self.metric_requests:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        found.setdefault(metric.name, []).append(metric)
        return found

    def spans(self) -> list[Any]:
        """Every span message received, in arrival order."""
        return spans_of(self.trace_requests)

    def span_names(self) -> list[str]:
        return [span.name for span in self.spans()]


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(self, request, context):
        self.sink.add(request, dict(context.invocation_metadata()))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(self, request, context):
        self.sink.add(request, dict(context.invocation_metadata()))
        return trace_service_pb2.ExportTraceServiceResponse()


def start_grpc_sink(sink: OtlpSink) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(sink), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(sink), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def start_http_sink(sink: OtlpSink) -> ThreadingHTTPServer:
    """An OTLP/HTTP receiver already serving in a thread; the caller shuts it down and closes it."""
    server = http_sink_server(sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def http_sink_server(sink: OtlpSink) -> ThreadingHTTPServer:
    """An OTLP/HTTP receiver bound to a free loopback port, not yet serving (see ``http_server.serving``)."""
    routes = {
        "/v1/metrics": (
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse,
        ),
        "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            route = routes.get(self.path)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if route is None or self.headers.get("content-type") != "application/x-protobuf":
                self.send_response(404 if route is None else 415)
                self.end_headers()
                return
            request_type, response_type = route
            request = request_type()
            request.ParseFromString(body)
            sink.add(request, {key.lower(): value for key, value in self.headers.items()})
            payload = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)
