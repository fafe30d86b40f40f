"""Instrument a FastAPI (or Starlette) app: the spec's HTTP metrics and one SERVER span per request.

Spans come from otelkit's own middleware by default (``http.tracer = "otelkit"``, about a
seventh of the library's cost per request) or from opentelemetry-instrumentation-fastapi
(``http.tracer = "opentelemetry-instrumentation"``) for teams that need its hooks and header
capture. With the library, the stack is, outermost first: its tracing middleware, Starlette's
error middleware, otelkit's metrics middleware, the application's middleware, the router.
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

    ``own_paths`` are the endpoints otelkit serves on the app (health, SLA, /metrics): not the
    service's traffic, so not measured unless ``http.measure_own_endpoints`` is on.
    """
    if getattr(app, "middleware_stack", None) is not None:
        raise OtelkitConfigError(
            "otelkit.init(app) was called after the app started serving (its middleware stack is built), "
            "so HTTP metrics and traces cannot be added. Call otelkit.init(app) where the app is created, "
            "before uvicorn starts it (routes may be added before or after)."
        )
    settings = handle.settings
    excluded = list(settings.prometheus.excluded_handlers)
    if not settings.http.measure_own_endpoints:
        excluded += [path for path in own_paths if path not in excluded]
    tracing = settings.tracing.enabled
    library_tracing = tracing and settings.http.tracer == "opentelemetry-instrumentation"
    if library_tracing:
        _instrument_tracing(app, handle, excluded)
    _disable_native_telemetry(app)
    app.add_middleware(
        HttpMiddleware,
        metrics=handle.http_metrics,
        excluded_handlers=excluded,
        own_paths=own_paths,
        routes_of=app,
        tracer=handle.tracer_provider.get_tracer("otelkit.http") if tracing and not library_tracing else None,
    )


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


def _disable_native_telemetry(app: Any) -> None:
    """FastAPI >= 0.165 traces and meters requests by itself once global providers exist.

    otelkit already traces through the instrumentation library and records the spec's
    metrics, so FastAPI's own spans (four per request: server, dependencies, endpoint,
    serialization) and ``http.server.*`` metrics would be duplicates that halve throughput.
    """
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        config.update(tracing=False, metrics=False, logs=False, operation_spans=False)
