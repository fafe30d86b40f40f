"""The request span's incoming context: otelkit's shortcut gives what ``propagate.extract`` gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelkit.instrumentation.server_spans import _GETTER, _Extractor

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HEADERS = [
    {},
    {b"host": b"example.com"},
    {b"traceparent": TRACEPARENT},
    {b"tracestate": b"vendor=1"},
    {b"baggage": b"tenant=acme"},
    {b"traceparent": TRACEPARENT, b"baggage": b"tenant=acme", b"tracestate": b"vendor=1"},
]


class HeaderNamedB3(TextMapPropagator):
    """A propagator that is not W3C's: the shortcut must not assume which headers it reads."""

    def extract(self, carrier, context=None, getter=None):  # type: ignore[no-untyped-def]
        context = otel_context.get_current() if context is None else context
        value = getter.get(carrier, "x-tenant") if getter else None
        return baggage.set_baggage("tenant", value[0], context) if value else context

    def inject(self, carrier, context=None, setter=None):  # type: ignore[no-untyped-def]
        pass

    @property
    def fields(self) -> set[str]:
        return {"x-tenant"}


@pytest.fixture
def in_a_span_with_baggage() -> Iterator[None]:
    """The caller's own context: a current span and baggage the extraction may or may not keep."""
    outer = SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(1))
    context = baggage.set_baggage("caller", "yes", trace.set_span_in_context(NonRecordingSpan(outer)))
    token = otel_context.attach(context)
    yield
    otel_context.detach(token)


def observed(context: otel_context.Context) -> tuple[object, dict[str, object]]:
    return trace.get_current_span(context).get_span_context(), dict(baggage.get_all(context))


@pytest.mark.parametrize(
    "propagators",
    [
        [TraceContextTextMapPropagator(), W3CBaggagePropagator()],
        [W3CBaggagePropagator(), TraceContextTextMapPropagator()],
        [TraceContextTextMapPropagator(), HeaderNamedB3()],
    ],
    ids=["w3c", "baggage-first", "not-only-w3c"],
)
@pytest.mark.parametrize("headers", [*HEADERS, {b"x-tenant": b"acme"}])
def test_the_shortcut_extracts_what_the_propagators_would(
    in_a_span_with_baggage: None, propagators: list[TextMapPropagator], headers: dict[bytes, bytes]
) -> None:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator(propagators))
    try:
        expected = observed(propagate.extract(headers, getter=_GETTER))
        assert observed(_Extractor().extract(headers)) == expected
    finally:
        propagate.set_global_textmap(previous)


def test_a_replaced_propagator_is_noticed(in_a_span_with_baggage: None) -> None:
    extractor = _Extractor()
    previous = propagate.get_global_textmap()
    try:
        assert observed(extractor.extract({b"x-tenant": b"acme"}))[1] == {}
        propagate.set_global_textmap(CompositePropagator([HeaderNamedB3()]))
        assert observed(extractor.extract({b"x-tenant": b"acme"}))[1] == {"caller": "yes", "tenant": "acme"}
    finally:
        propagate.set_global_textmap(previous)
