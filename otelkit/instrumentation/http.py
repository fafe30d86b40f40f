"""HTTP server metrics for ASGI apps: ``http_requests_total`` and ``http_request_duration_seconds``.

A plain ASGI middleware (no ``BaseHTTPMiddleware``): non-HTTP scopes pass straight through,
``send`` is wrapped to see the status, the clock runs in ``try/finally`` so exceptions and
streamed bodies are timed to their end, and the exception is re-raised untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry.metrics import Meter
from opentelemetry.trace import SpanContext, Tracer

from otelkit._internal.bound import BoundCounter
from otelkit._internal.bound_histograms import BoundHistograms, histogram
from otelkit._internal.lean_spans import LeanTracer
from otelkit._internal.log_once import log_exception_once
from otelkit._internal.overflow import OverflowWarner
from otelkit.instrumentation.routes import UNMATCHED, RouteResolver
from otelkit.instrumentation.server_spans import ServerSpan

if TYPE_CHECKING:  # the fastapi extra brings starlette; otelkit imports without it
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER_METHOD = "_OTHER"
"""Unknown methods fold into one value, as the HTTP semantic conventions do: clients choose them."""

CLIENT_CLOSED_REQUEST = 499
"""Recorded when the client went away before a response started (nginx's convention)."""


class HttpMetrics:
    """The two spec instruments, shared by every app instrumented under one handle."""

    def __init__(
        self,
        meter: Meter,
        *,
        cardinality_limit: int,
        warner: OverflowWarner,
        status_label: Literal["code", "class"],
        bound_histograms: BoundHistograms | None = None,
        boundaries: Sequence[float] = (),
    ) -> None:
        """With ``bound_histograms`` (the pipeline's, when its readers merge them) the duration
        histogram is aggregated in process; otherwise it is the SDK's."""
        self.requests = BoundCounter(
            meter,
            "http_requests_total",
            ("method", "handler", "status"),
            description="HTTP requests by method, route template and status.",
            cardinality_limit=cardinality_limit,
            warner=warner,
        )
        self.duration = histogram(
            meter,
            bound_histograms,
            "http_request_duration_seconds",
            ("method", "handler"),
            unit="s",
            description="HTTP request latency, to the last body byte.",
            boundaries=boundaries,
        )
        self._status_label = status_label
        self._status_values: dict[int, str] = {}
        self.observer: Callable[[int, float], None] | None = None
        """Also called with each request's status and seconds (the in-process SLA windows)."""

    def record(
        self, method: str, handler: str, status: int, seconds: float, span_context: SpanContext | None = None
    ) -> None:
        """``span_context``: the request's span, for the exemplar (else the current span is used)."""
        status_value = self._status_values.get(status)
        if status_value is None:
            status_value = str(status) if self._status_label == "code" else f"{status // 100}xx"
            self._status_values[status] = status_value
        self.requests.cell((method, handler, status_value)).add(1.0)
        self.duration.cell((method, handler)).observe(seconds, span_context)
        if self.observer is not None:
            self.observer(status, seconds)


class HttpMiddleware:
    """Records each HTTP request's metrics and, given a tracer, its SERVER span.

    Paths in ``excluded_handlers`` (health checks, /metrics) are neither recorded nor traced; a
    route template there excludes its requests from the metrics only: the span starts before
    routing, and spans of the handler's queries would otherwise point at a parent never sent.
    ``own_paths`` are otelkit's endpoints, plain routes the router does not name in the scope: when
    measured, their ``handler`` is their path rather than ``unmatched``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        excluded_handlers: Iterable[str],
        routes_of: Any,
        own_paths: Iterable[str] = (),
        tracer: Tracer | None = None,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._excluded = frozenset(excluded_handlers)
        self._own = frozenset(own_paths)
        self._resolver = RouteResolver(routes_of)
        # The SDK's tracer gets otelkit's lean request span; any other tracer is used as it is.
        self._tracer: Tracer | LeanTracer | None = (tracer and LeanTracer.of(tracer)) or tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers if the app raises before responding
        answered = 0.0  # when the last body byte was handed to the server
        entry_root_path = scope.get("root_path", "")
        method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
        span = None
        if self._tracer is not None and _route_path(scope, entry_root_path) not in self._excluded:
            try:
                span = ServerSpan(self._tracer, scope, method)
            except Exception:  # telemetry never fails a request
                log_exception_once("http-span", "otelkit: starting a request span failed")

        async def send_with_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                await send(message)
                return
            await send(message)
            if not message.get("more_body", False) and message["type"] == "http.response.body":
                answered = perf_counter()

        started = perf_counter()
        recorded_status = None
        try:
            await self.app(scope, receive, send_with_status)
        except asyncio.CancelledError:
            if status == 500:
                status = CLIENT_CLOSED_REQUEST
            raise
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
            # A response cut short by an exception (mid-stream) failed, whatever its status line
            # said; one whose body was complete (a background task failed after it) stands.
            recorded_status = status if answered else max(status, 500)
            raise
        finally:
            # Timed to the last body byte: background tasks that run after it do not count.
            elapsed = (answered or perf_counter()) - started
            span_context = span.span_context if span is not None else None
            handler = self._record(scope, entry_root_path, method, recorded_status or status, elapsed, span_context)
            if span is not None:
                span.finish(handler, status)

    def _record(
        self,
        scope: Scope,
        entry_root_path: str,
        method: str,
        status: int,
        seconds: float,
        span_context: SpanContext | None,
    ) -> str:
        """Record the metrics (inside the span, so exemplars point at it); return the handler."""
        handler = UNMATCHED
        try:
            handler = self._resolver.handler(scope, entry_root_path)
            if handler == UNMATCHED:
                path = _route_path(scope, entry_root_path)
                if path in self._excluded:
                    return handler
                if path in self._own:
                    handler = path
            elif handler in self._excluded:
                return handler
            self._metrics.record(method, handler, status, seconds, span_context)
        except Exception:  # telemetry never fails a request
            log_exception_once("http-metrics", "otelkit: recording HTTP metrics failed")
        return handler


def _route_path(scope: Scope, root_path: str) -> str:
    """The path the app routes on: without the root_path a proxy prefixed."""
    path: str = scope["path"]
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path
