"""What the Sentry bridge sends for a span: exactly the scrubbed span, encoded as the collector's encoder would."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelkit._internal.otlp_spans import encode_export_request
from otelkit.sentry.scrubbing import FILTERED, Scrubber
from otelkit.sentry.spans import ScrubbedAttributesEncoder, SpanScrubber

ATTRIBUTES: list[dict[str, Any]] = [
    {  # a request to a route with a secret parameter, from a client whose address is personal data
        "http.route": "/reset/{token}",
        "url.path": "/reset/s3cr3t",
        "url.query": "token=abc&page=2",
        "client.address": "203.0.113.9",
        "http.request.header.authorization": ("Bearer abc",),
        "server.port": 8000,
        "flag": True,
        "count": 1,
        "ratio": 1.0,
        "tuple": (True,),
    },
    {  # the same path under another route: the path itself is not secret there
        "http.route": "/items/{item_id}",
        "url.path": "/reset/s3cr3t",
        "flag": 1,  # equal to True as a dict key, an int on the wire
        "count": True,
        "note": "card 4111 1111 1111 1111",
        "numbers": [1, 2],
        "tuple": (1,),  # equal to (True,) as a dict key
    },
]


def spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    for attributes in ATTRIBUTES:
        with tracer.start_as_current_span("GET", kind=SpanKind.SERVER, attributes=attributes) as span:
            span.add_event("retry", {"password": "hunter2", "attempt": 2})
            span.set_status(Status(StatusCode.ERROR, "declined card 4111111111111111"))
        tracer.start_span("plain", attributes=attributes).end()
    return list(exporter.get_finished_spans())


def oracle(span: ReadableSpan, scrubber: Scrubber) -> dict[str, Any]:
    """The scrubbed attributes, one by one, as the scrubber's documented rules say."""
    attributes = dict(span.attributes or {})
    route = attributes.get("http.route")
    return {
        key: scrubber.scrub_path(value, route) if key == "url.path" else scrubber.scrub(value, key)
        for key, value in attributes.items()
    }


def decoded(payload: bytes) -> list[Any]:
    request = ExportTraceServiceRequest.FromString(payload)
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def test_the_bridge_sends_each_span_scrubbed_and_nothing_else_changed() -> None:
    scrubber = Scrubber()
    finished = spans()
    encoder = ScrubbedAttributesEncoder(scrubber)
    prepared = [SpanScrubber(scrubber).events_and_status(span) for span in finished]
    for _ in range(2):  # the second time from the encoder's cache
        sent = decoded(encode_export_request(prepared, encoder))
        # The oracle: the same spans with scrubbed attribute dicts, through the plain encoder.
        expected_spans = []
        for span, ready in zip(finished, prepared, strict=True):
            expected_spans.append(
                ReadableSpan(
                    name=span.name,
                    context=span.context,
                    parent=span.parent,
                    resource=span.resource,
                    attributes=oracle(span, scrubber),
                    events=ready.events,
                    links=span.links,
                    kind=span.kind,
                    status=ready.status,
                    start_time=span.start_time,
                    end_time=span.end_time,
                    instrumentation_scope=span.instrumentation_scope,
                )
            )
        assert sent == decoded(encode_export_request(expected_spans))

    first = {a.key: a.value for a in sent[0].attributes}
    assert first["url.path"].string_value == f"/reset/{FILTERED}"
    assert first["client.address"].string_value == FILTERED
    assert first["flag"].bool_value is True and first["count"].int_value == 1 and first["ratio"].double_value == 1.0
    second = {a.key: a.value for a in sent[2].attributes}
    assert second["url.path"].string_value == "/reset/s3cr3t"  # not a secret parameter of this route
    assert second["flag"].int_value == 1 and second["count"].bool_value is True
    assert second["note"].string_value == f"card {FILTERED}"
    assert first["tuple"].array_value.values[0].bool_value is True
    assert second["tuple"].array_value.values[0].int_value == 1
    assert sent[0].status.message == f"declined card {FILTERED}"
    assert {a.key: a.value.string_value for a in sent[0].events[0].attributes}["password"] == FILTERED
