"""Traces through config.traces-otlphttp.yaml reach an OTLP/HTTP backend as Sentry's OTLP ingest takes them.

The backend is a double of Sentry's OTLP traces endpoint (an edge of the world): it answers only
``POST /api/<project>/integration/otlp/v1/traces`` with ``application/x-protobuf`` and the
``x-sentry-auth: sentry sentry_key=<key>`` header, decodes the (gzip) body as an OTLP request, and
refuses anything else with the status Sentry's ingest would give.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

import otelkit
from tests.support.http_server import serving
from tests.support.otlp_sink import spans_of
from tests.support.pipeline import Collector, start_collector

pytestmark = pytest.mark.slow
PROJECT = "4508"
PUBLIC_KEY = "e2e0123456789abcdef0123456789abc"
TRACES_PATH = re.compile(r"^/api/(\d+)/integration/otlp/v1/traces$")


class SentryOtlpIngest(ThreadingHTTPServer):
    """Keeps accepted requests and the status of every refused one."""

    def __init__(self) -> None:
        self.accepted: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.body_sizes: list[int] = []
        """Each accepted request's body, decompressed."""
        self.refused: list[tuple[int, str]] = []
        self.arrived = threading.Condition()
        super().__init__(("127.0.0.1", 0), _IngestHandler)

    def refuse(self, status: int, why: str) -> int:
        with self.arrived:
            self.refused.append((status, why))
            self.arrived.notify_all()
        return status


class _IngestHandler(BaseHTTPRequestHandler):
    server: SentryOtlpIngest

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        status = self._ingest(body)
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def _ingest(self, body: bytes) -> int:
        path = TRACES_PATH.match(self.path)
        if path is None or path.group(1) != PROJECT:
            return self.server.refuse(404, f"path {self.path}")
        if self.headers.get("x-sentry-auth") != f"sentry sentry_key={PUBLIC_KEY}":
            return self.server.refuse(401, f"auth {self.headers.get('x-sentry-auth')!r}")
        if self.headers.get("content-type") != "application/x-protobuf":
            return self.server.refuse(415, f"content-type {self.headers.get('content-type')}")
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            return self.server.refuse(400, f"body: {error}")
        if not request.resource_spans:
            return self.server.refuse(400, "no resource_spans")
        with self.server.arrived:
            self.server.accepted.append(request)
            self.server.body_sizes.append(len(body))
            self.server.arrived.notify_all()
        return 200

    def log_message(self, format: str, *args: object) -> None:
        pass


def collector_sending_to(ingest: SentryOtlpIngest, tmp_path: Path, key: str = PUBLIC_KEY) -> Collector:
    """The collector with config.traces-otlphttp.yaml, configured as for Sentry, sending to the double."""
    port = ingest.server_address[1]
    overlay_env = {
        "OTELKIT_TRACES_OTLPHTTP_ENDPOINT": f"http://127.0.0.1:{port}/api/{PROJECT}/integration/otlp/v1/traces",
        "OTELKIT_TRACES_OTLPHTTP_HEADERS": f'{{x-sentry-auth: "sentry sentry_key={key}"}}',
    }
    return start_collector(tmp_path, overlay=("config.traces-otlphttp.yaml", overlay_env))


@pytest.fixture
def ingest() -> Iterator[SentryOtlpIngest]:
    with serving(SentryOtlpIngest(), name="sentry-otlp-ingest") as server:
        yield server


def test_spans_reach_an_otlp_http_backend_with_its_path_content_type_and_auth_header(
    tmp_path: Path, ingest: SentryOtlpIngest
) -> None:
    collector = collector_sending_to(ingest, tmp_path)
    try:
        app = FastAPI()

        @app.get("/orders/{order_id}")
        def order(order_id: int) -> dict[str, int]:
            return {"id": order_id}

        handle = otelkit.init(
            app,
            service={"name": "otlphttp-e2e"},
            otlp={"endpoint": collector.grpc_endpoint, "metrics": False},
            prometheus={"enabled": False},
        )
        client = TestClient(app)
        for order_id in range(3):
            assert client.get(f"/orders/{order_id}").status_code == 200
        handle.shutdown()

        def three_spans() -> bool:
            return len([s for s in spans_of(ingest.accepted) if s.name == "GET /orders/{order_id}"]) >= 3

        with ingest.arrived:
            assert ingest.arrived.wait_for(three_spans, timeout=20), (ingest.refused, collector.server.log()[-3000:])
        assert ingest.refused == []
        names = [s.name for s in spans_of(ingest.accepted)]
        assert names.count("GET /orders/{order_id}") == 3, names
        services = {
            attribute.value.string_value
            for request in ingest.accepted
            for resource_spans in request.resource_spans
            for attribute in resource_spans.resource.attributes
            if attribute.key == "service.name"
        }
        assert services == {"otlphttp-e2e"}
        assert PUBLIC_KEY not in collector.server.log()
    finally:
        collector.stop()


def test_a_wrong_key_is_refused_by_the_backend_double(tmp_path: Path, ingest: SentryOtlpIngest) -> None:
    """The double is strict: the same pipeline with another key delivers nothing."""
    collector = collector_sending_to(ingest, tmp_path, key="not-the-key")
    try:
        handle = otelkit.init(
            service={"name": "otlphttp-e2e"},
            otlp={"endpoint": collector.grpc_endpoint, "metrics": False},
            prometheus={"enabled": False},
            metrics={"system_metrics": False},
        )
        with handle.tracer_provider.get_tracer("e2e").start_as_current_span("refused"):
            pass
        handle.shutdown()
        with ingest.arrived:
            assert ingest.arrived.wait_for(lambda: ingest.refused, timeout=20), collector.server.log()[-3000:]
        assert ingest.refused[0] == (401, "auth 'sentry sentry_key=not-the-key'")
        assert ingest.accepted == []
    finally:
        collector.stop()


def test_the_collector_sends_a_large_batch_in_bounded_requests(tmp_path: Path, ingest: SentryOtlpIngest) -> None:
    """10 MB of spans (stack traces) reach the backend whole, in requests of at most 4.1 MB before gzip,
    where the batch processor alone would merge them into one request over common backends' limits."""
    collector = collector_sending_to(ingest, tmp_path)
    try:
        handle = otelkit.init(
            service={"name": "otlphttp-large"},
            otlp={"endpoint": collector.grpc_endpoint, "metrics": False},
            prometheus={"enabled": False},
            metrics={"system_metrics": False},
        )
        tracer = handle.tracer_provider.get_tracer("e2e")
        for index in range(512):
            with tracer.start_as_current_span(f"large-{index}", attributes={"exception.stacktrace": "t" * 20_000}):
                pass
        handle.shutdown()

        def all_arrived() -> bool:
            return len([s for s in spans_of(ingest.accepted) if s.name.startswith("large-")]) >= 512

        with ingest.arrived:
            assert ingest.arrived.wait_for(all_arrived, timeout=30), (ingest.refused, collector.server.log()[-3000:])
        assert sorted(s.name for s in spans_of(ingest.accepted)) == sorted(f"large-{n}" for n in range(512))
        assert len(ingest.body_sizes) >= 3 and max(ingest.body_sizes) <= 4_100_000, ingest.body_sizes
    finally:
        collector.stop()
