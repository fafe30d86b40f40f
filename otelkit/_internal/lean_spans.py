"""A request span that costs a third of the SDK's, for the one span otelkit starts per request.

Why: in a serving process the SDK's ``Tracer.start_span`` and ``Span`` (attribute cleaning
through ``BoundedAttributes``, a lock per setter, a snapshot ``ReadableSpan`` at the end) took
about 50 us of a 300 us request, most of tracing's cost. otelkit's own attributes are known
to be valid (strings and ints it built), so they go into a plain dict; whatever application
code adds through the API (``trace.get_current_span().set_attribute``, events, links, status)
is cleaned and bounded exactly as the SDK does. The span is the SDK's ``ReadableSpan`` itself,
handed to the provider's processors at ``on_start`` and ``on_end`` like any SDK span, so
exporters, the pytest capture and the Sentry bridge see no difference (a test compares the
two, field by field). Sampling, ids and trace flags come from the provider's own sampler and
id generator.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util import types

from otelkit._internal.sampling import ParentBasedRatio

_logger = logging.getLogger(__name__)
_UNSET = Status(StatusCode.UNSET)
_KNOWN_ATTRIBUTES_MAX = 32
"""More than the request span's own attributes (about 12) can ever be."""


_FLAGS = {flags: TraceFlags(flags) for flags in range(4)}
"""One shared instance per flags value (sampled, random trace id). A ``TraceFlags`` is an int
subclass the garbage collector tracks; spans queued for export (hundreds per batch) survive
collections, and each tracked object they hold makes the next collection come sooner."""


_STRIPES = 64
_locks = tuple(threading.Lock() for _ in range(_STRIPES))
"""Span locks, shared by span id: a lock per span would be one more tracked object per queued
span. A lock only guards a setter against ``end`` for the instant it runs, and no code runs
under it that could take another, so sharing costs no more than a rare wait."""


def _new_locks_after_fork() -> None:
    global _locks
    _locks = tuple(threading.Lock() for _ in range(_STRIPES))  # a parent thread may have held one


os.register_at_fork(after_in_child=_new_locks_after_fork)

_NO_OP_HOOKS = frozenset(
    {
        SpanProcessor.on_start,
        SpanProcessor._on_ending,
        BatchSpanProcessor.on_start,
        BatchSpanProcessor._on_ending,
        SimpleSpanProcessor.on_start,
        SimpleSpanProcessor._on_ending,
    }
)
"""The SDK's processors' ``on_start`` and ``_on_ending`` that do nothing (a test holds them to it):
not called, where a request span would make one call per processor and hook to each."""


class _Hooks:
    """The processors' hooks a span calls, read from the provider's processor tuple (replaced
    whole when a processor is added, so a span sees every processor added before it starts)."""

    __slots__ = ("ending", "ends", "processors", "starts")

    def __init__(self, processors: tuple[SpanProcessor, ...]) -> None:
        self.processors = processors
        self.starts = tuple(p.on_start for p in processors if not _no_op(p.on_start))
        self.ending = tuple(p._on_ending for p in processors if not _no_op(p._on_ending))
        self.ends = tuple(p.on_end for p in processors)


def _no_op(hook: Any) -> bool:
    """A bound method whose function is one of `_NO_OP_HOOKS` (an instance's own override or a
    mock's attribute is not)."""
    return getattr(hook, "__func__", None) in _NO_OP_HOOKS


class LeanTracer:
    """Starts `LeanSpan` s with an SDK tracer's sampler, ids, resource, limits, scope and processors."""

    def __init__(self, tracer: SdkTracer) -> None:
        self._sdk = tracer
        self._sampler = tracer.sampler
        # otelkit's own sampler decides without a SamplingResult: the span keeps its attributes.
        self._decide = self._sampler.decide if type(self._sampler) is ParentBasedRatio else None
        self._ids = tracer.id_generator
        # The SDK's default generator draws from the random module; drawn here directly, the same bits.
        self._random_ids = type(self._ids) is RandomIdGenerator and not (
            {"generate_trace_id", "generate_span_id"} & vars(self._ids).keys()  # methods replaced on the instance
        )
        self._processor = tracer.span_processor
        self._multi = type(self._processor) is SynchronousMultiSpanProcessor
        self._hooks = _Hooks(())
        self._scope = tracer._instrumentation_scope
        self._info = tracer.instrumentation_info
        self.limits: SpanLimits = getattr(tracer, "_span_limits", None) or SpanLimits()
        # Plain dicts for otelkit's own attributes are exact only while no limit can bite them
        # (a dozen attributes, no value length limit); otherwise they are bounded from the start.
        self.trusts_known_attributes = self.limits.max_span_attribute_length is None and (
            self.limits.max_span_attributes is None or self.limits.max_span_attributes >= _KNOWN_ATTRIBUTES_MAX
        )

    @classmethod
    def of(cls, tracer: trace_api.Tracer) -> LeanTracer | None:
        """For the SDK's tracer only; any other (an application's own provider) keeps its path."""
        needed = ("sampler", "id_generator", "span_processor", "resource", "instrumentation_info")
        private = ("_is_enabled", "_instrumentation_scope", "_span_limits")  # read, never written
        if type(tracer) is not SdkTracer or not all(hasattr(tracer, attr) for attr in (*needed, *private)):
            return None
        return cls(tracer)

    def hooks(self) -> _Hooks | None:
        """The hooks of the provider's processors as they are now; None when the provider's
        processor is not the SDK's synchronous one (its own ``on_start``/``on_end`` are called)."""
        if not self._multi:
            return None
        processors = self._processor._span_processors
        if processors is not self._hooks.processors:
            self._hooks = _Hooks(processors)
        return self._hooks

    def start_span(
        self, name: str, context: Context | None, kind: SpanKind, attributes: dict[str, types.AnyValue]
    ) -> trace_api.Span:
        # An empty context (a request carrying no trace headers) holds no span: no lookup.
        parent: SpanContext | None = None
        if context is None or context:
            parent = trace_api.get_current_span(context).get_span_context()
            if not parent.is_valid:
                parent = None
        if not self._sdk._is_enabled():  # a tracer configurator turned this scope off
            return trace_api.NonRecordingSpan(context=parent or INVALID_SPAN_CONTEXT)
        if parent is not None:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        elif self._random_ids:
            trace_id = random.getrandbits(128) or self._ids.generate_trace_id()  # 0 is invalid: drawn again
            random_trace_id = True
        else:
            trace_id = self._ids.generate_trace_id()
            random_trace_id = self._ids.is_trace_id_random()
        if self._decide is not None:
            sampled, state = self._decide(parent, trace_id)
            recording = sampled
        else:
            sampling = self._sampler.should_sample(context, trace_id, name, kind, attributes, ())
            sampled, recording = sampling.decision.is_sampled(), sampling.decision.is_recording()
            state, attributes = sampling.trace_state, sampling.attributes  # type: ignore[assignment]
        flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
        if random_trace_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        if self._random_ids:
            span_id = random.getrandbits(64) or self._ids.generate_span_id()
            # SpanContext's own constructor, less its checks: both ids are valid (nonzero, in range) here.
            span_context = tuple.__new__(
                SpanContext, (trace_id, span_id, False, _FLAGS[flags], state or DEFAULT_TRACE_STATE, True)
            )
        else:  # another generator's ids are checked as the SDK checks them
            span_context = SpanContext(
                trace_id, self._ids.generate_span_id(), is_remote=False, trace_flags=_FLAGS[flags], trace_state=state
            )
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        span = LeanSpan(self, name, span_context, parent, kind, attributes)
        hooks = self.hooks()
        if hooks is None:
            self._processor.on_start(span, parent_context=context)
        else:
            for on_start in hooks.starts:
                on_start(span, parent_context=context)
        return span


class LeanSpan(trace_api.Span, ReadableSpan):
    """Recording until `end`; then the very object, frozen, is the finished span the processors get."""

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, types.AnyValue],
    ) -> None:
        # ReadableSpan's fields, set directly: its __init__ would build a Resource when given none.
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer._info
        self._instrumentation_scope = tracer._scope
        self._parent = parent
        self._start_time: int | None = time_ns()
        self._end_time: int | None = None
        self._attributes: dict[str, types.AnyValue] | BoundedAttributes = dict(attributes)
        # Shared empty tuples until the first event or link: a span waiting in a batch queue then
        # holds no lists the garbage collector must track (see _FLAGS).
        self._events: tuple[Event, ...] | BoundedList = ()
        self._links: tuple[trace_api.Link, ...] | BoundedList = ()
        self._resource = tracer._sdk.resource  # read per span: a fork gives the provider a new instance id
        self._status = _UNSET
        self._lean_tracer = tracer
        self._lock = _locks[context.span_id % _STRIPES]
        if not tracer.trusts_known_attributes:
            self._bounded_attributes()

    def end_with(self, name: str | None, attributes: dict[str, str | int], error: bool) -> None:
        """Rename, add otelkit's own attributes, set ERROR if asked, and end: one call and one lock
        for what would be five API calls at the end of every request."""
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Calling end() on an ended span.")
                return
            if name is not None:
                self._name = name
            # A plain dict while no limit can bite (already valid values); else bounded as the SDK does.
            self._attributes.update(attributes)
            if error:
                self._set_status(StatusCode.ERROR, None)
            self._freeze(time_ns())
        self._ended_now()

    def _bounded_attributes(self) -> BoundedAttributes:
        """From the first value application code sets, every attribute is cleaned and bounded as the SDK does."""
        if not isinstance(self._attributes, BoundedAttributes):
            limits = self._lean_tracer.limits
            self._attributes = BoundedAttributes(
                limits.max_span_attributes,
                self._attributes,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        return self._attributes

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        with self._lock:
            if not self._ended("set_attribute"):
                self._bounded_attributes()[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        with self._lock:
            if self._ended("set_attributes"):
                return
            bounded = self._bounded_attributes()
            for key, value in attributes.items():
                bounded[key] = value

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        limits = self._lean_tracer.limits
        bounded = BoundedAttributes(
            limits.max_event_attributes, attributes, max_value_len=limits.max_attribute_length, immutable=True
        )
        event = Event(name=name, attributes=bounded, timestamp=timestamp)
        with self._lock:
            if self._ended("add_event"):
                return
            if not isinstance(self._events, BoundedList):
                self._events = BoundedList.from_seq(limits.max_events, self._events)
            self._events.append(event)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return  # the SDK's rule: an invalid context is kept only when attributes or state say why
        limits = self._lean_tracer.limits
        bounded = BoundedAttributes(
            limits.max_link_attributes, attributes, max_value_len=limits.max_attribute_length, immutable=True
        )
        with self._lock:
            if self._ended("add_link"):
                return
            if not isinstance(self._links, BoundedList):
                self._links = BoundedList.from_seq(limits.max_links, self._links)
            self._links.append(trace_api.Link(context, bounded))

    def update_name(self, name: str) -> None:
        with self._lock:
            if not self._ended("update_name"):
                self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        with self._lock:
            if not self._ended("set_status"):
                self._set_status(status, description)

    def _set_status(self, status: Status | StatusCode, description: str | None) -> None:
        code = status.status_code if isinstance(status, Status) else status
        if self._status.status_code is StatusCode.OK or code is StatusCode.UNSET:
            return  # the SDK's rule: OK is final, UNSET never overrides
        if isinstance(status, Status):
            if description is not None:
                _logger.warning("Description %s ignored: pass a Status, or a StatusCode and a description", description)
            self._status = status
        else:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module, qualname = type(exception).__module__, type(exception).__qualname__
        event_attributes: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event_attributes.update(attributes)
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _logger.warning("Calling end() on an ended span.")
                return
            self._freeze(end_time if end_time is not None else time_ns())
        self._ended_now()

    def _freeze(self, end_time: int) -> None:
        """Under the lock: the end time, and bounded attributes made immutable as the SDK's end() does."""
        self._end_time = end_time
        if isinstance(self._attributes, BoundedAttributes):
            self._attributes._immutable = True

    def _ended_now(self) -> None:
        """The processors' end hooks; every setter refuses from now on: this object is the snapshot."""
        tracer = self._lean_tracer
        hooks = tracer.hooks()
        if hooks is None:
            tracer._processor._on_ending(self)
            tracer._processor.on_end(self)
            return
        for on_ending in hooks.ending:
            on_ending(self)
        for on_end in hooks.ends:
            on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """As the SDK's span: an exception leaving a ``with span:`` block is recorded and sets ERROR."""
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def _ended(self, operation: str) -> bool:
        if self._end_time is None:
            return False
        _logger.warning("Tried calling %s on an ended span.", operation)
        return True

    @property
    def links(self) -> Sequence[trace_api.Link]:
        return tuple(self._links)

    def __repr__(self) -> str:
        return f'LeanSpan(name="{self._name}", context={self._context})'
