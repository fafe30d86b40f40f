"""What the Sentry bridge sends for a span: exactly the scrubbed span, encoded as the collector's encoder would."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelkit._internal.otlp_spans import encode_export_request, encode_export_request_twice
from otelkit.sentry.scrubbing import FILTERED, Scrubber
from otelkit.sentry.span_encoding import CACHE_LIMIT, ScrubbedSpans
from tests.support.spans import with_fields

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


def expected_for_sentry(finished: list[ReadableSpan], scrubber: Scrubber) -> list[Any]:
    """The oracle: the same spans with attributes, events and status scrubbed one by one, through the plain encoder."""
    expected = []
    for span in finished:
        events = [
            Event(
                event.name,
                {key: scrubber.scrub(value, key) for key, value in (event.attributes or {}).items()},
                event.timestamp,
            )
            for event in span.events
        ]
        status = Status(span.status.status_code, scrubber.scrub_text(span.status.description or "") or None)
        expected.append(with_fields(span, attributes=oracle(span, scrubber), events=events, status=status))
    return decoded(encode_export_request(expected))


def test_the_bridge_sends_each_span_scrubbed_and_nothing_else_changed() -> None:
    scrubber = Scrubber()
    finished = spans()
    expected = expected_for_sentry(finished, scrubber)
    alone, shared = ScrubbedSpans(scrubber), ScrubbedSpans(scrubber)
    for _ in range(2):  # the second time from the caches
        sent = decoded(alone.encode(finished))  # Sentry alone: no collector takes the spans
        assert sent == expected
        # Encoded once for both: the collector's request is the plain encoder's, byte for byte.
        for_collector, for_sentry = encode_export_request_twice(finished, shared)
        assert for_collector == encode_export_request(finished)
        assert decoded(for_sentry) == expected

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


def test_pairs_the_wire_cannot_carry_do_not_share_a_scrubbed_value() -> None:
    """Both integers are out of int64, so both encode to nothing for the collector; only the secret one
    has a value for Sentry ([Filtered]), and it must not be served for the other from a cache."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    for attributes in ({"token": 2**70}, {"count": 2**70}):
        tracer.start_span("GET", attributes=attributes).end()
    _, for_sentry = encode_export_request_twice(exporter.get_finished_spans(), ScrubbedSpans(Scrubber()))
    sent = [{a.key: a.value.string_value for a in span.attributes} for span in decoded(for_sentry)]
    assert sent == [{"token": FILTERED}, {}]


class Route(StrEnum):
    RESET = "/reset/{token}"


def test_a_route_given_as_a_str_subclass_still_scrubs_its_secret_parameter() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("otelkit.http").start_span(
        "GET", attributes={"http.route": Route.RESET, "url.path": "/reset/s3cr3t"}
    ).end()
    _, for_sentry = encode_export_request_twice(exporter.get_finished_spans(), ScrubbedSpans(Scrubber()))
    (span,) = decoded(for_sentry)
    assert {a.key: a.value.string_value for a in span.attributes}["url.path"] == f"/reset/{FILTERED}"


def test_the_scrub_cache_stays_bounded_over_many_routes_and_shares_pairs_between_them() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    routes = CACHE_LIMIT * 2
    for n in range(routes):
        attributes = {"http.route": f"/r{n}/{{token}}", "url.path": f"/r{n}/s3cr3t", "client.address": "203.0.113.9"}
        tracer.start_span("GET", attributes=attributes).end()
    scrubbed = ScrubbedSpans(Scrubber())
    calls = 0
    scrub_attribute = scrubbed._scrubber.scrub_attribute

    def counted(key: str, *args: Any) -> Any:
        nonlocal calls
        calls += key == "client.address"
        return scrub_attribute(key, *args)

    scrubbed._scrubber.scrub_attribute = counted  # type: ignore[method-assign]
    _, for_sentry = encode_export_request_twice(exporter.get_finished_spans(), scrubbed)
    sent = decoded(for_sentry)
    assert all({a.key: a.value.string_value for a in span.attributes}["url.path"].endswith(FILTERED) for span in sent)
    cached = len(scrubbed._pairs) + sum(len(paths) for paths in scrubbed._paths.values())
    assert cached <= CACHE_LIMIT and len(scrubbed._paths) <= CACHE_LIMIT
    # client.address is the same pair on every route: scrubbed again only after the cache was cleared.
    # Two pairs a span are cached (the path and the route), so the cache fills every CACHE_LIMIT / 2 spans.
    assert calls <= routes * 2 // CACHE_LIMIT + 1  # once, and once more after each time the cache was full
