"""otelkit's lean request span against the SDK's span: the same operations export the same span."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
    _disable_tracer_configurator,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelkit._internal.lean_spans import LeanSpan, LeanTracer
from otelkit._internal.sampling import ParentBasedRatio

SCOPE = "otelkit.http"


class StartRecorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[tuple[str, Any]] = []
        self.ending: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append((span.name, parent_context))

    def _on_ending(self, span: Any) -> None:
        self.ending.append(span.name)


Providers = tuple[TracerProvider, InMemorySpanExporter, StartRecorder]


def providers(sampler: Any = None, **provider_options: Any) -> Providers:
    provider = TracerProvider(sampler=sampler or ParentBased(TraceIdRatioBased(1.0)), **provider_options)
    exporter, recorder = InMemorySpanExporter(), StartRecorder()
    provider.add_span_processor(recorder)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter, recorder


def lean_of(tracer: Any) -> LeanTracer:
    lean = LeanTracer.of(tracer)
    assert lean is not None
    return lean


def start_get(tracer: Any, lean: bool) -> Any:
    """A root GET SERVER span from the SDK's tracer or, with ``lean``, from its lean tracer."""
    return (lean_of(tracer) if lean else tracer).start_span("GET", None, SpanKind.SERVER, {})


def without_stacktrace(attributes: Any) -> dict[str, Any]:
    """The stack trace differs by the caller's frames; that it names the exception is compared."""
    items = (attributes or {}).items()
    return {k: ("ValueError: declined" in v if k == "exception.stacktrace" else v) for k, v in items}


def comparable(span: ReadableSpan) -> dict[str, Any]:
    """Everything an exporter reads, but the ids and clocks."""
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "status": (span.status.status_code, span.status.description),
        "events": [(e.name, without_stacktrace(e.attributes)) for e in span.events],
        "dropped_events": span.dropped_events,
        "links": [(link.context.span_id, dict(link.attributes or {})) for link in span.links],
        "parent": (span.parent.span_id, span.parent.is_remote) if span.parent else None,
        "flags": span.context.trace_flags,
        "trace_state": span.context.trace_state.to_header(),
        "remote": span.context.is_remote,
        "resource": dict(span.resource.attributes),
        "scope": span.instrumentation_scope,
        "info": span._instrumentation_info,  # what the deprecated instrumentation_info property returns
        "ended": span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time,
    }


def run_both(
    operations: Callable[[trace.Span], None], context: Any = None, sampler: Any = None, **provider_options: Any
) -> list[Any]:
    """Run ``operations`` on an SDK span and on a lean span; return both as exported."""
    exported = []
    for lean in (False, True):
        provider, exporter, recorder = providers(sampler, **provider_options)
        sdk_tracer = provider.get_tracer(SCOPE, "1.2", schema_url="https://opentelemetry.io/schemas/1.30.0")
        attributes = {"http.request.method": "GET", "url.path": "/items/1", "server.port": 8000}
        if lean:
            lean_tracer = lean_of(sdk_tracer)
            span = lean_tracer.start_span("GET", context, SpanKind.SERVER, attributes)
        else:
            span = sdk_tracer.start_span("GET", context, SpanKind.SERVER, attributes)
        assert (type(span) is LeanSpan) == (lean and span.is_recording())
        operations(span)
        span.end()
        sampled = span.get_span_context().trace_flags.sampled and span.get_span_context().is_valid
        assert [name for name, _ in recorder.started] == (["GET"] if sampled else [])
        assert len(recorder.ending) == (1 if sampled else 0)
        exported.append([comparable(s) for s in exporter.get_finished_spans()])
    return exported


def request_like(span: trace.Span) -> None:
    span.update_name("GET /items/{item_id}")
    span.set_attribute("http.route", "/items/{item_id}")
    span.set_attribute("http.response.status_code", 500)
    span.set_status(Status(StatusCode.ERROR, "RuntimeError: boom"))
    span.set_status(StatusCode.UNSET)  # never overrides


def application_calls(span: trace.Span) -> None:
    span.set_attribute("app.user", "u-1")
    span.set_attribute("app.bad", {"not": "allowed"})  # dropped, as the SDK drops it
    span.set_attribute("app.list", [1, 2, 3])
    span.set_attributes({"app.a": True, "app.b": 1.5})
    span.add_event("cache miss", {"key": "cart:7"})
    try:
        raise ValueError("declined")
    except ValueError as exc:
        span.record_exception(exc, {"extra": "x"})
    span.add_link(trace.SpanContext(7, 9, is_remote=True), {"why": "batch"})
    span.add_link(trace.INVALID_SPAN_CONTEXT)  # dropped: no reason to keep it
    span.add_link(None)  # type: ignore[arg-type]  # ignored, not an error
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR, "ignored: OK is final")


def after_the_end(span: trace.Span) -> None:
    span.end()
    span.set_attribute("late", 1)
    span.update_name("late")
    span.add_event("late")


def otelkit_sets(span: trace.Span) -> None:
    """What the request middleware does at the end: the lean span's one call, the API on the SDK's."""
    attributes = {"http.route": "/items/{item_id}", "user_agent.original": "Mozilla/5.0 (a long one)"}
    if isinstance(span, LeanSpan):
        span.end_with("GET /items/{item_id}", {**attributes, "error.type": "503"}, error=True)
        return
    span.update_name("GET /items/{item_id}")
    span.set_attributes({**attributes, "error.type": "503"})
    span.set_status(Status(StatusCode.ERROR))
    span.end()


def raises_in_a_with_block(span: trace.Span) -> None:
    with pytest.raises(KeyError), span:
        raise KeyError("cart")


OPERATIONS = [request_like, application_calls, after_the_end, otelkit_sets, raises_in_a_with_block]


@pytest.mark.parametrize("operations", OPERATIONS)
def test_the_lean_span_exports_what_the_sdk_span_exports(operations: Callable[[trace.Span], None]) -> None:
    sdk, lean = run_both(operations)
    assert lean == sdk and len(lean) == 1


def test_limits_apply_to_what_applications_add(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "2")
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5")

    def many(span: trace.Span) -> None:
        for n in range(6):
            span.set_attribute(f"app.{n}", "abcdefghij")
            span.add_event(f"event {n}")

    sdk, lean = run_both(many)
    assert lean == sdk
    assert len(lean[0]["attributes"]) == 4 and lean[0]["dropped_attributes"] > 0 and lean[0]["dropped_events"] == 4
    assert lean[0]["attributes"]["app.5"] == "abcde"


@pytest.mark.parametrize(
    "limits",
    [{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5"}, {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3"}],
    ids=["value length", "count"],
)
def test_limits_bind_otelkit_own_attributes_too(monkeypatch: pytest.MonkeyPatch, limits: dict[str, str]) -> None:
    for name, value in limits.items():
        monkeypatch.setenv(name, value)
    sdk, lean = run_both(otelkit_sets)
    assert lean == sdk
    assert len(lean[0]["attributes"]) <= 3 or lean[0]["attributes"]["user_agent.original"] == "Mozil"


def test_limits_given_to_the_provider_apply() -> None:
    limits = SpanLimits(max_span_attributes=2, max_attribute_length=4)
    sdk, lean = run_both(application_calls, span_limits=limits)
    assert lean == sdk and len(lean[0]["attributes"]) == 2 and lean[0]["dropped_attributes"] > 0


def test_a_disabled_tracer_records_nothing() -> None:
    provider, exporter, _ = providers()
    provider._set_tracer_configurator(tracer_configurator=_disable_tracer_configurator)
    lean_tracer = lean_of(provider.get_tracer(SCOPE))
    span = lean_tracer.start_span("GET", None, SpanKind.SERVER, {})
    span.end()
    assert not span.is_recording() and exporter.get_finished_spans() == ()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_reports_its_own_resource() -> None:
    """The provider gives a forked child a new resource; the lean span must not keep the parent's."""
    provider, exporter, _ = providers()
    sdk_tracer = provider.get_tracer(SCOPE)
    lean_tracer = lean_of(sdk_tracer)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one span each way, then report whether their resources agree
        try:
            lean_tracer.start_span("GET", None, SpanKind.SERVER, {}).end()
            sdk_tracer.start_span("GET", None, SpanKind.SERVER, {}).end()
            lean_span, sdk_span = exporter.get_finished_spans()
            os.write(write, b"same" if lean_span.resource == sdk_span.resource else b"different")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"same"
    os.close(read)


def test_a_remote_parent_and_its_sampling_decision_are_kept() -> None:
    propagator = TraceContextTextMapPropagator()
    sampled = propagator.extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=abc"}
    )
    unsampled = propagator.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"})
    sdk, lean = run_both(request_like, sampled)
    assert lean == sdk and lean[0]["parent"] == (0xB7AD6B7169203331, True)
    assert run_both(request_like, unsampled) == [[], []]  # ParentBased: not recorded, not exported
    assert run_both(request_like, sampler=ALWAYS_OFF) == [[], []]


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_otelkits_sampler_decides_for_the_lean_span_as_for_the_sdks(ratio: float) -> None:
    """With otelkit's sampler the lean tracer asks it directly (no SamplingResult): same spans."""
    propagator = TraceContextTextMapPropagator()
    parents = [
        None,
        propagator.extract(
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "v=1"}
        ),
        propagator.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}),
    ]
    exported = [run_both(request_like, parent, sampler=ParentBasedRatio(ratio)) for parent in parents]
    for sdk, lean in exported:
        assert lean == sdk
    assert [len(sdk) for sdk, _ in exported] == [int(ratio), 1, 0]  # the parent's flag decides when there is one
    assert exported[1][1][0]["trace_state"] == "v=1"  # the parent's trace state is kept


def test_the_lean_span_is_current_for_children_and_shares_their_trace() -> None:
    provider, exporter, _ = providers()
    sdk_tracer = provider.get_tracer(SCOPE)
    lean_tracer = lean_of(sdk_tracer)
    parent = lean_tracer.start_span("GET", None, SpanKind.SERVER, {})
    with trace.use_span(parent, end_on_exit=True), sdk_tracer.start_as_current_span("SELECT"):
        pass
    child, server = exporter.get_finished_spans()
    assert child.parent is not None and child.parent.span_id == server.context.span_id
    assert child.context.trace_id == server.context.trace_id


def test_tracers_other_than_the_sdks_are_not_replaced() -> None:
    assert LeanTracer.of(trace.NoOpTracer()) is None


def test_a_finished_span_holds_nothing_else_the_garbage_collector_tracks() -> None:
    """Spans wait in the export queue for hundreds of requests; every tracked object each one holds
    brings the next collection sooner (events, links, flags and lock are shared until used)."""
    import gc

    provider, _, _ = providers()
    lean = lean_of(provider.get_tracer(SCOPE))
    span = lean.start_span("GET", None, SpanKind.SERVER, {"http.request.method": "GET", "server.port": 8000})
    span.end()
    owned = {name: value for name, value in vars(span).items() if name != "_lean_tracer"}
    from otelkit._internal.lean_spans import _locks

    shared = (span._resource, span._status, span._instrumentation_info, span._instrumentation_scope, *SpanKind)
    shared_ids = {id(value) for value in (*shared, *_locks)}
    tracked = {name for name, value in owned.items() if gc.is_tracked(value) and id(value) not in shared_ids}
    assert tracked == {"_context"}, tracked
    assert span._context.trace_flags is lean.start_span("GET", None, SpanKind.SERVER, {})._context.trace_flags


def test_a_fork_never_inherits_a_span_lock_held_by_another_thread() -> None:
    import threading

    from otelkit._internal import lean_spans

    provider, exporter, _ = providers()
    lean = lean_of(provider.get_tracer(SCOPE))
    held, release = threading.Event(), threading.Event()

    def hold_every_lock() -> None:
        for lock in lean_spans._locks:
            lock.acquire()
        held.set()
        release.wait(10)
        for lock in lean_spans._locks:
            lock.release()

    holder = threading.Thread(target=hold_every_lock)
    holder.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: ending a span must not wait for a thread that does not exist here
        span = lean.start_span("GET", None, SpanKind.SERVER, {})
        span.set_attribute("in", "child")
        span.end()
        os._exit(0 if len(exporter.get_finished_spans()) == 1 else 1)
    release.set()
    holder.join()
    deadline = time.monotonic() + 10
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child deadlocked on a span lock held in the parent")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_a_processor_added_later_sees_the_spans_as_with_the_sdk() -> None:
    """The SDK's span calls the processors there are when it starts and when it ends; so does the
    lean span, though it calls only the hooks that do something."""
    provider, first, _ = providers()
    lean = lean_of(provider.get_tracer(SCOPE))
    open_span = lean.start_span("before", None, SpanKind.SERVER, {})
    late_recorder, late_exporter = StartRecorder(), InMemorySpanExporter()
    provider.add_span_processor(late_recorder)
    provider.add_span_processor(SimpleSpanProcessor(late_exporter))
    open_span.end()
    lean.start_span("after", None, SpanKind.SERVER, {}).end()
    assert [name for name, _ in late_recorder.started] == ["after"]
    assert late_recorder.ending == ["before", "after"]
    assert [s.name for s in late_exporter.get_finished_spans()] == ["before", "after"]
    assert [s.name for s in first.get_finished_spans()] == ["before", "after"]


def test_the_sdk_hooks_left_uncalled_do_nothing() -> None:
    """The lean span skips the SDK processors' ``on_start`` and ``_on_ending``: they must not read the span."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otelkit._internal.lean_spans import _NO_OP_HOOKS

    class Untouchable:
        def __getattribute__(self, name: str) -> Any:
            raise AssertionError(f"read {name}")

    exporter = InMemorySpanExporter()
    batch = BatchSpanProcessor(exporter)
    instances = {
        BatchSpanProcessor: batch,
        SimpleSpanProcessor: SimpleSpanProcessor(exporter),
        SpanProcessor: SpanProcessor(),
    }
    try:
        for hook in _NO_OP_HOOKS:
            owner = next(cls for cls in instances if hook in (cls.on_start, cls._on_ending))
            arguments = (Untouchable(), Untouchable()) if hook.__name__ == "on_start" else (Untouchable(),)
            assert hook(instances[owner], *arguments) is None
        batch.force_flush()
        assert exporter.get_finished_spans() == ()
    finally:
        batch.shutdown()


def test_ids_are_the_draws_the_sdks_generator_makes() -> None:
    import random

    ids = []
    for lean in (False, True):
        provider, _, _ = providers()
        tracer = provider.get_tracer(SCOPE)
        random.seed(20261130)
        span = start_get(tracer, lean)
        context = span.get_span_context()
        ids.append((context.trace_id, context.span_id, context.is_valid, context.trace_flags))
        span.end()
    assert ids[0] == ids[1]


def test_another_id_generators_ids_are_checked_as_the_sdk_checks_them() -> None:
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class Zeros(IdGenerator):
        """Invalid ids: the span context must say so, as the SDK's does."""

        def generate_span_id(self) -> int:
            return 0

        def generate_trace_id(self) -> int:
            return 0

    contexts = []
    for lean in (False, True):
        provider, _, _ = providers(id_generator=Zeros())
        tracer = provider.get_tracer(SCOPE)
        span = start_get(tracer, lean)
        context = span.get_span_context()
        contexts.append((context.trace_id, context.span_id, context.is_valid, span.is_recording()))
        span.end()
    assert contexts[0] == contexts[1]
    assert contexts[1][2] is False


def test_hooks_set_on_a_processor_instance_are_called_as_by_the_sdk() -> None:
    """Which hooks to skip is decided by the bound method: an instance's own override is called, and a
    mock (hooks only on the instance) is a processor like any other."""
    from unittest.mock import MagicMock

    calls = []
    for lean in (False, True):
        provider, exporter, _ = providers()
        mock = MagicMock()
        provider.add_span_processor(mock)
        simple = SimpleSpanProcessor(exporter)
        simple.on_start = lambda span, parent_context=None, lean=lean: calls.append((lean, "start"))  # type: ignore[method-assign]
        provider.add_span_processor(simple)
        tracer = provider.get_tracer(SCOPE)
        start_get(tracer, lean).end()
        assert (mock.on_start.call_count, mock._on_ending.call_count, mock.on_end.call_count) == (1, 1, 1)
    assert calls == [(False, "start"), (True, "start")]


def test_id_methods_replaced_on_the_generator_are_used() -> None:
    ids = []
    for lean in (False, True):
        provider, _, _ = providers()
        tracer = provider.get_tracer(SCOPE)
        tracer.id_generator.generate_trace_id = lambda: 0xABC  # type: ignore[method-assign]
        tracer.id_generator.generate_span_id = lambda: 0xDEF  # type: ignore[method-assign]
        span = start_get(tracer, lean)
        ids.append((span.get_span_context().trace_id, span.get_span_context().span_id))
        span.end()
    assert ids == [(0xABC, 0xDEF), (0xABC, 0xDEF)]


def test_attributes_set_by_the_application_are_frozen_at_the_end_as_the_sdks() -> None:
    """Both ways of ending (``end`` and the middleware's ``end_with``) freeze bounded attributes."""
    for end in ("end", "end_with"):
        frozen = []
        for lean in (False, True):
            provider, _, _ = providers()
            span = start_get(provider.get_tracer(SCOPE), lean)
            span.set_attribute("app.key", "value")
            if end == "end_with" and lean:
                span.end_with(None, {}, False)
            else:
                span.end()
            with pytest.raises(TypeError):
                span._attributes["late"] = 1
            frozen.append(dict(span.attributes))
        assert frozen[0] == frozen[1] == {"app.key": "value"}, end
