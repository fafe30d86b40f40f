"""The hand-written span encoder must produce exactly the messages the SDK's encoder builds."""

from __future__ import annotations

import itertools
from enum import IntEnum

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from otelkit._internal.otlp_spans import encode_export_request, encode_export_requests
from tests.support.spans import with_fields


def make_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    spans: list[ReadableSpan] = []
    for service in ("checkout", "billing"):
        provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "é"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("otelkit.http", "1.2", schema_url="https://opentelemetry.io/schemas/1.26.0")
        other = provider.get_tracer("other", attributes={"scope.attr": 1})
        remote = SpanContext(
            0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")])
        )
        with tracer.start_as_current_span(
            "GET /items/{item_id}",
            context=__import__("opentelemetry.trace", fromlist=["set_span_in_context"]).set_span_in_context(
                NonRecordingSpan(remote)
            ),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "server.port": 8000,
                "negative": -5,
                "big": 2**62,
                "ratio": 0.25,
                "flag": True,
                "tags": ("a", "b"),
                "numbers": [1, 2, 3],
                "unicode": "über ✓",
                "empty": "",
            },
            links=[Link(SpanContext(0x1, 0x2, is_remote=False), {"link.attr": "x"})],
        ) as server:
            server.add_event("retry", {"attempt": 2})
            with other.start_as_current_span("SELECT shop", kind=SpanKind.CLIENT) as query:
                query.set_status(Status(StatusCode.ERROR, "deadlock"))
                query.record_exception(ValueError("boom"))
            with other.start_as_current_span("ok-span") as ok:
                ok.set_status(Status(StatusCode.OK))
    spans.extend(exporter.get_finished_spans())
    return spans


def test_bytes_parse_to_the_sdk_encoders_message() -> None:
    spans = make_spans()
    ours = ExportTraceServiceRequest.FromString(encode_export_request(spans))
    theirs = encode_spans(spans)
    assert ours == theirs


def test_a_repeated_encoding_uses_the_cache_and_stays_identical() -> None:
    spans = make_spans()
    assert encode_export_request(spans) == encode_export_request(spans)
    assert ExportTraceServiceRequest.FromString(encode_export_request(spans[:1])) == encode_spans(spans[:1])


def test_what_the_wire_cannot_carry_is_left_out_as_the_sdk_does_and_counts_survive() -> None:
    """Integers outside int64 (the SDK's encoder drops those attributes) and dropped event/link counts."""
    from opentelemetry.sdk.trace import SpanLimits

    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_events=0, max_links=0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    huge = {"big": 2**70, "edge": 2**63, "low": -(2**64) - 1, "nested": [1, 2**64], "kept": 2**63 - 1, "ok": "yes"}
    with tracer.start_as_current_span("GET", attributes=huge, links=[Link(SpanContext(1, 2, False))]) as span:
        span.add_event("dropped by the limit")
    spans = list(exporter.get_finished_spans())
    ours = ExportTraceServiceRequest.FromString(encode_export_request(spans))  # parses: the batch is not lost
    assert ours == encode_spans(spans)
    (sent,) = ours.resource_spans[0].scope_spans[0].spans
    assert {a.key for a in sent.attributes} == {"kept", "ok"}
    assert (sent.dropped_events_count, sent.dropped_links_count) == (1, 1)


def test_lean_spans_and_their_limits_encode_as_the_sdk_encodes_them() -> None:
    """The lean request span is read field by field: plain attributes, then bounded ones with drops."""
    from opentelemetry.sdk.trace import SpanLimits

    from otelkit._internal.lean_spans import LeanSpan, LeanTracer

    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=3, max_events=1, max_links=1))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    lean = LeanTracer.of(provider.get_tracer("otelkit.http"))
    assert lean is not None
    plain = lean.start_span("GET", None, SpanKind.SERVER, {"http.request.method": "GET", "server.port": 8000})
    plain.end()
    bounded = lean.start_span("POST", None, SpanKind.SERVER, {"a": "1"})
    for key in ("b", "c", "d", "e"):  # past max_span_attributes: two dropped
        bounded.set_attribute(key, key)
    bounded.add_event("first")
    bounded.add_event("second")  # past max_events
    bounded.add_link(SpanContext(1, 2, False))
    bounded.add_link(SpanContext(3, 4, False))  # past max_links
    bounded.set_status(Status(StatusCode.ERROR, "boom"))
    bounded.end()
    spans = list(exporter.get_finished_spans())
    assert [type(span) for span in spans] == [LeanSpan, LeanSpan]
    ours = ExportTraceServiceRequest.FromString(encode_export_request(spans))
    assert ours == encode_spans(spans)
    sent = ours.resource_spans[0].scope_spans[0].spans[1]
    assert (sent.dropped_attributes_count, sent.dropped_events_count, sent.dropped_links_count) == (2, 1, 1)


def test_a_span_class_with_its_own_properties_is_read_through_them() -> None:
    """A processor's wrapper may present other values than its fields: the encoder must ask it."""

    class Renamed(ReadableSpan):
        @property
        def name(self) -> str:
            return "renamed"

        @property
        def attributes(self) -> dict[str, str]:
            return {"from": "property"}

    (span,) = make_spans()[:1]
    wrapped = Renamed(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={"from": "field"},
        kind=span.kind,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
    (sent,) = (
        ExportTraceServiceRequest.FromString(encode_export_request([wrapped])).resource_spans[0].scope_spans[0].spans
    )
    assert sent.name == "renamed"
    assert [(a.key, a.value.string_value) for a in sent.attributes] == [("from", "property")]


def test_equal_values_of_other_types_keep_their_own_wire_type() -> None:
    """True, 1 and 1.0 are one dict key in Python; the encoder's cache must not confuse them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelkit.http")
    for value in (True, 1, 1.0, "1", True, 1):
        with tracer.start_as_current_span("span", attributes={"answer": value, "same": "x"}):
            pass
    spans = list(exporter.get_finished_spans())
    ours = ExportTraceServiceRequest.FromString(encode_export_request(spans))
    assert ours == encode_spans(spans)
    sent = ours.resource_spans[0].scope_spans[0].spans
    kinds = [span.attributes[0].value.WhichOneof("value") for span in sent]
    assert kinds == ["bool_value", "int_value", "double_value", "string_value", "bool_value", "int_value"]


class Status3(IntEnum):
    OK = 200


def test_an_int_subclass_value_encodes_as_its_integer() -> None:
    """An IntEnum (``HTTPStatus.OK``) is an int the SDK keeps as is; the int64 range check must not scan a range."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s", attributes={"status": Status3.OK, "big": 2**63}).end()
    spans = exporter.get_finished_spans()
    (sent,) = ExportTraceServiceRequest.FromString(encode_export_request(spans)).resource_spans[0].scope_spans[0].spans
    assert {a.key: a.value.int_value for a in sent.attributes} == {"status": 200}  # 2**63 is past int64: left out


def padded_spans(count: int, pad: int) -> list[ReadableSpan]:
    """``make_spans`` (two resources, two scopes each) repeated, each span carrying ``pad`` bytes more.
    One call's spans are reused: their resources stay the same objects, grouped as the SDK groups them."""
    spans: list[ReadableSpan] = []
    originals = make_spans()
    while len(spans) < count:
        for span in originals:
            spans.append(
                with_fields(span, attributes={**(span.attributes or {}), "padding": "p" * pad, "n": len(spans)})
            )
    return spans[:count]


def test_requests_over_the_limit_are_split_in_order_and_each_parses_to_the_sdks_message() -> None:
    spans = padded_spans(40, 700)
    whole = len(encode_export_request(spans))
    for max_bytes in (whole, whole - 1, whole // 2, whole // 3, 5000, 3000):
        requests, oversized = encode_export_requests(spans, max_bytes)
        assert oversized == []
        assert [span for part, _ in requests for span in part] == spans  # each span once, in order
        for part, payload in requests:
            assert len(payload) <= max_bytes
            assert ExportTraceServiceRequest.FromString(payload) == encode_spans(part)
        # Greedy, not needlessly small: a part with the next part's first span would not have fitted.
        for (part, _), (following, _) in itertools.pairwise(requests):
            assert len(encode_export_request([*part, following[0]])) > max_bytes - 16
    assert len(encode_export_requests(spans, whole + 64)[0]) == 1  # the estimate's slack is a few bytes a group
    assert len(encode_export_requests(spans, whole // 3)[0]) in (3, 4)


def test_a_span_too_large_for_any_request_is_returned_apart_and_the_others_still_go() -> None:
    spans = padded_spans(6, 100)
    huge = padded_spans(1, 50_000)[0]
    batch = [*spans[:3], huge, *spans[3:]]
    requests, oversized = encode_export_requests(batch, 20_000)
    assert oversized == [huge]
    assert [span for part, _ in requests for span in part] == spans
    assert encode_export_requests([huge], 20_000) == ([], [huge])


def test_a_span_is_too_large_only_when_its_request_alone_is_over_the_limit() -> None:
    """Counted from above by a few bytes a group at most: never a span whose own request fits with room."""
    max_bytes = 5000
    for pad in range(4500, 5100, 7):
        span = padded_spans(1, pad)[0]
        alone = len(encode_export_request([span]))
        requests, oversized = encode_export_requests([span], max_bytes)
        if alone > max_bytes:
            assert oversized == [span] and requests == [], alone
        elif alone <= max_bytes - 24:
            assert oversized == [] and len(requests) == 1 and len(requests[0][1]) <= max_bytes, alone


def test_groups_elsewhere_in_the_batch_do_not_count_against_a_part() -> None:
    """A part pays for the resources and scopes it holds, not for every one in the batch."""
    scopes = [
        TracerProvider(resource=Resource.create({"service.name": f"svc-{n}"})).get_tracer(f"scope-{n}" * 20)
        for n in range(20)
    ]
    small = []
    for tracer in scopes:
        span = tracer.start_span("small")
        span.end()
        small.append(span)
    big = padded_spans(1, 3000)[0]
    max_bytes = len(encode_export_request([big])) + 8
    requests, oversized = encode_export_requests([*small, big], max_bytes)
    assert oversized == []
    assert requests[-1][0] == [big]
    assert all(len(payload) <= max_bytes for _, payload in requests)
