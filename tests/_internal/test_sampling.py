"""otelkit's one-call sampler decides exactly as the SDK's ParentBased(TraceIdRatioBased(ratio))."""

from __future__ import annotations

import random

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
from opentelemetry.trace.span import TraceState

from otelkit._internal.sampling import ParentBasedRatio


def parents() -> list[Context | None]:
    state = TraceState([("vendor", "x")])
    contexts: list[Context | None] = [None, Context()]
    for remote in (True, False):
        for flags in (TraceFlags.DEFAULT, TraceFlags.SAMPLED, TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID):
            parent = SpanContext(0xABC, 0xDEF, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=state)
            contexts.append(set_span_in_context(NonRecordingSpan(parent)))
    invalid = SpanContext(0, 0, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    contexts.append(set_span_in_context(NonRecordingSpan(invalid)))  # an invalid parent is no parent
    return contexts


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 1.0])
def test_decisions_attributes_and_trace_state_are_the_sdks(ratio: float) -> None:
    ours, theirs = ParentBasedRatio(ratio), ParentBased(TraceIdRatioBased(ratio))
    rng = random.Random(7)
    attributes = {"http.request.method": "GET"}
    for parent in parents():
        for _ in range(200):
            trace_id = rng.getrandbits(128)
            mine = ours.should_sample(parent, trace_id, "GET", SpanKind.SERVER, attributes)
            sdk = theirs.should_sample(parent, trace_id, "GET", SpanKind.SERVER, attributes)
            assert mine.decision is sdk.decision
            assert dict(mine.attributes) == dict(sdk.attributes)
            assert mine.trace_state == sdk.trace_state
    assert ours.get_description() == theirs.get_description()
    assert isinstance(ours, ParentBased)
