"""Instrument a FastAPI (or Starlette) app: the spec's HTTP metrics and one SERVER span per request.

Spans come from otelkit's own middleware by default (``http.tracer = "otelkit"``, about a
seventh of the library's cost per request) or from opentelemetry-instrumentation-fastapi
(``http.tracer = "opentelemetry-instrumentation"``) for teams that need its hooks and header
capture.

otelkit's middleware is put around the stack when Starlette builds it (on the first request),
not added with ``add_middleware``, so middleware the application adds after ``init()`` (CORS,
trusted hosts, auth) is inside it too: its answers are counted and traced. The stack, outermost
first, is then: otelkit's middleware, Starlette's error middleware (so the status an exception
handler answers is the one recorded), the application's middleware, the router. With the
library tracer: the library's tracing middleware, Starlette's error middleware, otelkit's
metrics middleware, the application's middleware, the router (the library requires Starlette's
error middleware outermost of what it wraps, so an exception handler's status is seen as 500
there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import NoOpMeterProvider

from otelkit.errors import OtelkitConfigError
from otelkit.instrumentation.http import HttpMiddleware

if TYPE_CHECKING:
    from otelkit.handle import Otelkit


def instrument_fastapi(app: Any, handle: Otelkit, *, own_paths: Sequence[str] = ()) -> None:
    """Add tracing and metrics middleware to ``app``; must run before it serves its first request.

    ``own_paths`` are the endpoints otelkit serves on the app (health, SLA): not the service's
    traffic, so not measured unless ``http.measure_own_endpoints`` is on. ``metrics_path`` never is.
    """
    if getattr(app, "middleware_stack", None) is not None:
        raise OtelkitConfigError(
            "otelkit.init(app) was called after the app started serving (its middleware stack is built), "
            "so HTTP metrics and traces cannot be added. Call otelkit.init(app) where the app is created, "
            "before uvicorn starts it (routes may be added before or after)."
        )
    settings = handle.settings
    excluded = list(settings.prometheus.excluded_handlers)
    if settings.prometheus.metrics_path not in excluded:  # a scrape is never the service's traffic
        excluded.append(settings.prometheus.metrics_path)
    if not settings.http.measure_own_endpoints:
        excluded += [path for path in own_paths if path not in excluded]
    tracing = settings.tracing.enabled
    library_tracing = tracing and settings.http.tracer == "opentelemetry-instrumentation"
    tracer = handle.tracer_provider.get_tracer("otelkit.http") if tracing and not library_tracing else None
    _disable_native_telemetry(app)

    def around(inner: Any) -> HttpMiddleware:
        return HttpMiddleware(
            inner,
            metrics=handle.http_metrics,
            excluded_handlers=excluded,
            own_paths=own_paths,
            routes_of=app,
            tracer=tracer,
        )

    # Before the library's hook, so that the library's (built last) wraps this one.
    _wrap_middleware_stack(app, around, inside_error_middleware=library_tracing)
    if library_tracing:
        _instrument_tracing(app, handle, excluded)


def _wrap_middleware_stack(app: Any, around: Any, *, inside_error_middleware: bool) -> None:
    """Put ``around`` outside the stack Starlette builds, or just inside its error middleware."""
    from starlette.middleware.errors import ServerErrorMiddleware

    build = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        stack = build()
        if inside_error_middleware and isinstance(stack, ServerErrorMiddleware):
            stack.app = around(stack.app)
            return stack
        return around(stack)

    app.build_middleware_stack = build_middleware_stack


def _instrument_tracing(app: Any, handle: Otelkit, excluded: list[str]) -> None:
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        raise OtelkitConfigError(
            "tracing a FastAPI app needs opentelemetry-instrumentation-fastapi: pip install 'otelkit[fastapi]' "
            "(or set OTELKIT_TRACING__ENABLED=false)"
        ) from exc
    # Its own http.server.* histograms duplicate http_request_duration_seconds: a no-op meter
    # provider drops them at no cost unless asked to keep them.
    keep = handle.settings.http.library_metrics
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=handle.tracer_provider,
        meter_provider=handle.meter_provider if keep else NoOpMeterProvider(),
        # Matched against the whole URL (scheme://host/path?query): anchored after the host, so
        # excluding /health does not also exclude /v1/health.
        excluded_urls=",".join(f"^[^:/]+://[^/]+{re.escape(path)}(\\?|$)" for path in excluded),
        exclude_spans=["receive", "send"],  # one span per request, not three
    )


def _disable_native_telemetry(app: Any) -> None:
    """FastAPI >= 0.165 traces and meters requests by itself once global providers exist.

    otelkit already traces through the instrumentation library and records the spec's
    metrics, so FastAPI's own spans (four per request: server, dependencies, endpoint,
    serialization) and ``http.server.*`` metrics would be duplicates that halve throughput.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        config.update(tracing=False, metrics=False, logs=False, operation_spans=False)
