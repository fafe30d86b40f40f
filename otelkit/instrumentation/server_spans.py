"""One SERVER span per HTTP request, with the stable HTTP semantic-convention attributes.

Why not only opentelemetry-instrumentation-asgi: on this machine it costs about 120 us per
request (three spans unless told otherwise, attribute cleaning, a walk over every route to
name the span), which halves a small service's throughput. Here the route is already known
from the metrics middleware, the incoming context is extracted with the global propagator
(W3C ``traceparent`` by default), and the span is current while the app and the metrics
run, so exemplars and child spans join the request's trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelkit._internal.lean_spans import LeanSpan, LeanTracer
from otelkit.instrumentation.routes import UNMATCHED


class _AsgiHeaders(Getter[dict[bytes, bytes]]):
    """Reads the raw ASGI headers (names lowercased by `_headers`); a value is decoded only when a
    propagator asks for it, not every header of every request."""

    def get(self, carrier: dict[bytes, bytes], key: str) -> list[str] | None:
        value = carrier.get(key.lower().encode("latin-1"))
        return None if value is None else [value.decode("latin-1")]

    def keys(self, carrier: dict[bytes, bytes]) -> list[str]:
        return [name.decode("latin-1") for name in carrier]


_GETTER = _AsgiHeaders()

_W3C_PROPAGATORS = (TraceContextTextMapPropagator, W3CBaggagePropagator)


class _Extractor:
    """``propagate.extract`` unless the propagators are W3C's (the default) and the request
    carries none of their headers: most requests at the edge carry none, and extracting nothing
    through the composite propagator costs more than the rest of the span's start. The context
    returned is then the one extract() would return: a fresh one when trace context comes first
    (so the request's span is a root), else the current one."""

    __slots__ = ("_fresh", "_propagator", "_w3c_only")

    def __init__(self) -> None:
        self._propagator: object = None
        self._w3c_only = False
        self._fresh = True

    def extract(self, headers: dict[bytes, bytes]) -> Context:
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:  # set_global_textmap() may replace it at any time
            # CompositePropagator keeps its parts private; without them the slow path stays safe.
            parts = getattr(propagator, "_propagators", [propagator])
            self._w3c_only = bool(parts) and all(type(part) in _W3C_PROPAGATORS for part in parts)
            self._fresh = bool(parts) and type(parts[0]) is TraceContextTextMapPropagator
            self._propagator = propagator
        if self._w3c_only and not (b"traceparent" in headers or b"tracestate" in headers or b"baggage" in headers):
            return Context() if self._fresh else otel_context.get_current()
        return propagate.extract(headers, getter=_GETTER)


_EXTRACTOR = _Extractor()
_DEFAULT_PORTS = {"http": 80, "https": 443}
"""``server.port`` when the Host header names none: the port its scheme implies (semconv)."""


def _headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Lowercased name to value; a repeated header's values joined with commas (RFC 9110 5.3).

    Servers lowercase names as ASGI recommends, so one check of all names together usually
    spares the loop; a server that keeps the client's case gets it."""
    headers = dict(raw)
    if len(headers) != len(raw) or not b"".join(headers).islower():
        headers = {}
        for raw_name, value in raw:
            name = raw_name.lower()
            headers[name] = headers[name] + b"," + value if name in headers else value
    return headers


_server_cache: dict[tuple[str, bytes], dict[str, Any]] = {}
_SERVER_CACHE_LIMIT = 1024
_CACHED_HOST_MAX = 256
"""Longer Host headers are parsed each time: a client chooses them, and a full cache of long
ones would hold megabytes."""


def _server_attributes(scheme: str, raw_host: bytes) -> dict[str, Any]:
    """``server.address`` and ``server.port`` from the Host header, parsed once per host and
    scheme seen: a service answers to a handful of names, and parsing costs more than the lookup.
    Bounded: the cache is emptied when full."""
    key = (scheme, raw_host)
    attributes = _server_cache.get(key)
    if attributes is None:
        host = raw_host.decode("latin-1")
        name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
        attributes = {"server.address": name}
        if port:
            attributes["server.port"] = int(port)
        elif scheme in _DEFAULT_PORTS:
            attributes["server.port"] = _DEFAULT_PORTS[scheme]
        if len(raw_host) <= _CACHED_HOST_MAX:
            if len(_server_cache) >= _SERVER_CACHE_LIMIT:
                _server_cache.clear()
            _server_cache[key] = attributes
    return attributes


class ServerSpan:
    """Starts the request's span and makes it current; `finish` names it by route and ends it."""

    __slots__ = ("_failed", "_method", "_span", "_token")

    def __init__(self, tracer: Tracer | LeanTracer, scope: dict[str, Any], method: str) -> None:
        raw = scope.get("headers") or ()
        headers = _headers(raw if isinstance(raw, list | tuple) else list(raw))
        parent = _EXTRACTOR.extract(headers)
        scheme = scope.get("scheme", "http")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": scheme,
            "url.path": scope.get("path", ""),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if scope.get("method") != method:
            attributes["http.request.method_original"] = scope.get("method")
        if scope.get("query_string"):
            attributes["url.query"] = scope["query_string"].decode("latin-1")
        raw_host = headers.get(b"host")
        if raw_host:
            attributes.update(_server_attributes(scheme, raw_host))
        else:
            server = scope.get("server")
            if server:
                attributes["server.address"], attributes["server.port"] = server[0], server[1]
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        user_agent = headers.get(b"user-agent")
        if user_agent is not None:
            attributes["user_agent.original"] = user_agent.decode("latin-1")
        self._method = method
        self._failed = False
        self._span: Span = tracer.start_span(method, parent, SpanKind.SERVER, attributes)
        # trace.set_span_in_context, less a function call and a copy of an empty context.
        self._token = otel_context.attach(
            Context({**parent, _SPAN_KEY: self._span} if parent else {_SPAN_KEY: self._span})
        )

    @property
    def span_context(self) -> SpanContext:
        return self._span.get_span_context()

    def record_exception(self, exc: BaseException) -> None:
        self._failed = True
        if self._span.is_recording():
            self._span.record_exception(exc)
            self._span.set_attribute("error.type", type(exc).__qualname__)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def finish(self, handler: str, status: int) -> None:
        """Name by route (semconv: ``{method} {http.route}``), set status, end, detach."""
        span = self._span
        try:
            if type(span) is LeanSpan:
                matched = handler != UNMATCHED
                attributes: dict[str, str | int] = {"http.route": handler} if matched else {}
                attributes["http.response.status_code"] = status
                error = status >= 500 and not self._failed
                if error:
                    attributes["error.type"] = str(status)
                span.end_with(f"{self._method} {handler}" if matched else None, attributes, error)
                return
            if span.is_recording():
                set_attribute = span.set_attribute
                if handler != UNMATCHED:
                    span.update_name(f"{self._method} {handler}")
                    set_attribute("http.route", handler)
                set_attribute("http.response.status_code", status)
                if status >= 500 and not self._failed:
                    set_attribute("error.type", str(status))
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
        finally:
            otel_context.detach(self._token)
