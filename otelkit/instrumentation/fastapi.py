"""Instrument a FastAPI (or Starlette) app: spans through opentelemetry-instrumentation-fastapi,
the spec's HTTP metrics through otelkit's own middleware.

Order of the resulting stack, outermost first: the library's tracing middleware (so the server
span is current everywhere below, and exemplars link to it), Starlette's error middleware,
otelkit's metrics middleware, the application's own middleware, the router.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import NoOpMeterProvider

from otelkit.errors import OtelkitConfigError
from otelkit.instrumentation.http import HttpMetricsMiddleware

if TYPE_CHECKING:
    from otelkit.handle import Otelkit


def instrument_fastapi(app: Any, handle: Otelkit) -> None:
    """Add tracing and metrics middleware to ``app``; must run before it serves its first request."""
    if getattr(app, "middleware_stack", None) is not None:
        raise OtelkitConfigError(
            "otelkit.init(app) was called after the app started serving (its middleware stack is built), "
            "so HTTP metrics and traces cannot be added. Call otelkit.init(app) where the app is created, "
            "before uvicorn starts it (routes may be added before or after)."
        )
    settings = handle.settings
    excluded = settings.prometheus.excluded_handlers
    if settings.tracing.enabled:
        _instrument_tracing(app, handle, excluded)
    _quiet_native_telemetry(app, keep=settings.http.library_metrics)
    app.add_middleware(HttpMetricsMiddleware, metrics=handle.http_metrics, excluded_handlers=excluded, routes_of=app)


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
        excluded_urls=",".join(f"{re.escape(path)}(\\?|$)" for path in excluded),
        exclude_spans=["receive", "send"],  # one span per request, not three
    )


def _quiet_native_telemetry(app: Any, *, keep: bool) -> None:
    """FastAPI >= 0.165 traces and meters by itself once global providers exist.

    It steps aside on its own when the library's middleware is present; without tracing it
    would still emit ``http.server.*`` duplicates, so its metrics are turned off unless kept.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict) and not keep:
        config["metrics"] = False
