"""otelkit's sampler: ``ParentBased(TraceIdRatioBased(ratio))`` with the SDK's default delegates,
decided in one call.

Why: every span asks the sampler, and the SDK's composition (a delegate chosen by the parent,
called with keyword arguments, each looking the parent up again) costs about as much as the
rest of starting otelkit's request span. The decisions are the SDK's: a valid parent's sampled
flag decides (remote or local alike, as the default delegates do) and its trace state is kept;
a root span is sampled when the low 64 bits of its trace id fall under the ratio's bound. It is
a ``ParentBased`` and describes itself as one, so nothing reading the provider's sampler can
tell the difference (a test compares its decisions with the SDK's own composition).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

_ID_BITS = TraceIdRatioBased.TRACE_ID_LIMIT
_SAMPLE = Decision.RECORD_AND_SAMPLE
_DROP = Decision.DROP


class ParentBasedRatio(ParentBased):
    def __init__(self, ratio: float) -> None:
        super().__init__(TraceIdRatioBased(ratio))
        self._bound = self._root.bound

    def decide(self, parent: SpanContext | None, trace_id: int) -> tuple[bool, TraceState | None]:
        """Sampled or not, and the trace state to keep: what `should_sample` decides, for a
        caller that already has the parent's span context (otelkit's request spans)."""
        if parent is not None and parent.is_valid:
            return parent.trace_flags.sampled, parent.trace_state
        return trace_id & _ID_BITS < self._bound, None

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampled, state = self.decide(get_current_span(parent_context).get_span_context(), trace_id)
        if sampled:
            return SamplingResult(_SAMPLE, attributes, state)
        return SamplingResult(_DROP, None, state)
