"""The duration histogram carries the trace id of a sampled request (seen on the OTLP wire)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

import otelkit
from tests.support.otlp_sink import OtlpSink, start_grpc_sink


def test_duration_exemplar_is_the_request_trace() -> None:
    sink = OtlpSink()
    server, port = start_grpc_sink(sink)
    try:
        app = FastAPI()

        @app.get("/orders/{order_id}")
        def order(order_id: int) -> dict[str, int]:
            return {"id": order_id}

        handle = otelkit.init(
            app,
            otlp={"endpoint": f"http://127.0.0.1:{port}", "export_interval_seconds": 60},
            prometheus={"enabled": False},
            metrics={"system_metrics": False},
        )
        TestClient(app).get("/orders/1")
        handle.shutdown()
        assert sink.wait_for(lambda: sink.metric_requests and sink.trace_requests)
    finally:
        server.stop(grace=None)
    (span_trace_id,) = {
        span.trace_id
        for request in sink.trace_requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
        if span.name == "GET /orders/{order_id}"
    }
    point = sink.metrics()["http_request_duration_seconds"][-1].histogram.data_points[0]
    assert {e.trace_id for e in point.exemplars} == {span_trace_id}
    counter = sink.metrics()["http_requests_total"][-1].sum
    assert counter.is_monotonic and counter.data_points[0].as_double == 1
