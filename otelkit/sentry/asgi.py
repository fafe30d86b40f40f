"""Per-request Sentry context and the report of unhandled exceptions, as a plain ASGI middleware.

It sits just inside otelkit's HTTP middleware, so the request's OpenTelemetry SERVER span is
the current span when an exception passes: the event gets that trace and span id (through
``OTLPIntegration``'s propagation context) and links to the trace the collector received.
Each request gets its own Sentry isolation scope (`otelkit.sentry.isolation`), so users, tags
and breadcrumbs set while serving it stay with it. Every event sent during a request gets the
request (method, URL, headers, query string, a JSON or form body up to 10 kB as the application
read it) and the route template as transaction name, never the raw path; an unhandled exception
also gets status 500, what the server answers. `Scrubber` cleans all of it before sending. It
builds no Sentry transaction: spans come from OpenTelemetry.

Per request this costs two small objects and a context variable; the request is described only
when an event is actually sent (`describe_current_request`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import sentry_sdk
from sentry_sdk.utils import event_from_exception

from otelkit._internal.log_once import log_exception_once
from otelkit.instrumentation.routes import UNMATCHED, RouteResolver
from otelkit.sentry.isolation import current_request, enter_request_scope, leave_request_scope
from otelkit.sentry.scrubbing import Scrubber

if TYPE_CHECKING:  # the fastapi extra brings starlette; otelkit imports without it
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 10_000
"""Sentry's own "medium" request-body limit; larger bodies are left out of events."""
_BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MECHANISM = "otelkit.asgi"
SERVER_ERROR = 500


class SentryRequestMiddleware:
    """Isolation scope and request context per HTTP request; reports exceptions that escape the app."""

    def __init__(self, app: ASGIApp, *, routes_of: Any, scrubber: Scrubber, send_default_pii: bool = False) -> None:
        self.app = app
        self.resolver = RouteResolver(routes_of)
        self.scrubber = scrubber
        self.send_default_pii = send_default_pii

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(scope, self)
        token = enter_request_scope(request)
        try:
            await self.app(scope, request.receive(receive), send)
        except Exception as exc:
            request.report(exc)
            raise
        finally:
            leave_request_scope(token)


def describe_current_request(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Global event processor: adds the request being served, if any, to the event."""
    request = current_request()
    if isinstance(request, _Request):
        request.describe(event)
    return event


class _Request:
    __slots__ = ("_body", "_middleware", "_root_path", "_scope", "_status")

    def __init__(self, scope: Scope, middleware: SentryRequestMiddleware) -> None:
        self._scope = scope
        self._middleware = middleware
        self._root_path: str = scope.get("root_path", "")
        self._status: int | None = None
        self._body: bytearray | None = None

    def receive(self, receive: Receive) -> Receive:
        """Keep a copy of small JSON/form bodies as the application reads them, for a failing request's event."""
        if self._scope["method"] not in _BODY_METHODS or not _wants_body(self._scope):
            return receive
        self._body = bytearray()

        async def receive_and_keep() -> Message:
            message = await receive()
            body = self._body
            if body is not None and message["type"] == "http.request":
                chunk = message.get("body", b"")
                if len(body) + len(chunk) > MAX_BODY_BYTES:
                    self._body = None  # too large for an event: keep nothing rather than a fragment
                else:
                    body += chunk
            return message

        return receive_and_keep

    def report(self, exc: Exception) -> None:
        """Send the unhandled exception; telemetry never turns into a second failure."""
        try:
            client = sentry_sdk.get_client()
            if not client.is_active():
                return
            self._status = SERVER_ERROR
            event, hint = event_from_exception(
                exc, client_options=client.options, mechanism={"type": MECHANISM, "handled": False}
            )
            sentry_sdk.capture_event(event, hint=hint)
        except Exception:
            log_exception_once("sentry-report", "otelkit: reporting an exception to Sentry failed")

    def describe(self, event: dict[str, Any]) -> None:
        """Request, transaction name (the route template) and, for the failure itself, the status."""
        try:
            scope = self._scope
            method = scope["method"]
            route = self._middleware.resolver.handler(scope, self._root_path)
            matched = route != UNMATCHED
            if "transaction" not in event:
                event["transaction"] = f"{method} {route}" if matched else method
                event["transaction_info"] = {"source": "route" if matched else "custom"}
            if matched:
                event.setdefault("tags", {})["http.route"] = route
            event["request"] = self._request_data(route if matched else None)
            if self._status is not None:
                event.setdefault("contexts", {})["response"] = {"status_code": self._status}
        except Exception:
            log_exception_once("sentry-describe", "otelkit: describing the request for Sentry failed")

    def _request_data(self, route: str | None) -> dict[str, Any]:
        scope = self._scope
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        host = headers.get("host") or _server(scope)
        middleware = self._middleware
        path = middleware.scrubber.scrub_path(scope.get("path", ""), _full_route(scope, self._root_path, route))
        data: dict[str, Any] = {
            "method": scope["method"],
            "url": f"{scope.get('scheme', 'http')}://{host}{path}",
            "headers": headers,
        }
        if scope.get("query_string"):
            data["query_string"] = scope["query_string"].decode("latin-1")
        body = self._parsed_body(headers.get("content-type", ""))
        if body is not None:
            data["data"] = body
        client = scope.get("client")
        if middleware.send_default_pii and client:
            data["env"] = {"REMOTE_ADDR": client[0]}
        return data

    def _parsed_body(self, content_type: str) -> Any:
        if not self._body:
            return None
        try:
            if content_type.startswith("application/json"):
                return json.loads(self._body)
            return dict(parse_qsl(self._body.decode("utf-8", "replace"), keep_blank_values=True))
        except ValueError:
            return None


def _wants_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").lower().startswith(_BODY_TYPES)
    return False


def _server(scope: Scope) -> str:
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server else "unknown"


def _full_route(scope: Scope, root_path: str, route: str | None) -> str | None:
    """The template to line the URL path up with: the path as the app saw it includes root_path."""
    if route is None:
        return None
    return root_path + route if root_path and scope.get("path", "").startswith(root_path) else route


__all__ = ["MAX_BODY_BYTES", "SentryRequestMiddleware", "describe_current_request"]
