"""`init()`: one call from settings to a running metrics and trace pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.metrics._internal import _ProxyMeterProvider

from otelkit._internal import state
from otelkit._internal.config import load_settings
from otelkit._internal.pipeline import Pipeline, build_pipeline
from otelkit._internal.workers import worker_count
from otelkit.errors import OtelkitConfigError
from otelkit.handle import Otelkit
from otelkit.settings import OtelkitSettings

if TYPE_CHECKING:
    from otelkit.sentry.client import BeforeSend, SentryBridge

logger = logging.getLogger("otelkit")


def init(
    app: Any = None,
    *,
    settings: OtelkitSettings | None = None,
    engine: Any = None,
    redis: Any = None,
    sentry_before_send: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] | None = None,
    **overrides: Any,
) -> Otelkit:
    """Configure metrics and traces for this process and, given an app, add its routes.

        >>> handle = otelkit.init(app, service={"name": "checkout", "version": "1.4.2"})  # doctest: +SKIP
        >>> handle.shutdown()                                                          # doctest: +SKIP

    ``engine`` (a SQLAlchemy Engine or AsyncEngine) and ``redis`` (a redis.Redis or
    redis.asyncio.Redis) are traced, measured and health-checked; more of either can be added
    with ``handle.instrument_sqlalchemy()`` / ``handle.instrument_redis()``.

    With ``sentry.enabled`` and a DSN, Sentry starts too: errors with request context, and the
    same spans as the collector (see `otelkit.sentry`); ``sentry_before_send(event, hint)`` is the
    application's own Sentry hook, run before otelkit scrubs the event.

    Settings come from ``settings``, then ``overrides`` (same shape as `OtelkitSettings`,
    sections as dicts), then ``OTELKIT_*``/``OTEL_*`` variables and secret files.

    Calling it again while a handle is live returns that handle: the first configuration
    stays in force (providers cannot be swapped under running instruments), and a warning
    says so when the new arguments differ. Call ``shutdown()`` first to reconfigure.

    Raises `OtelkitConfigError` for invalid settings, naming the variable and the value.
    """
    with state.lock:
        existing = state.current
        if existing is not None:
            if settings is not None or overrides:
                requested = load_settings(settings, overrides)
                if requested != existing.settings:
                    logger.warning(
                        "otelkit.init() called again with different settings; the first configuration "
                        "stays in force. Call shutdown() on the handle first to reconfigure."
                    )
            _instrument_dependencies(existing, engine, redis)
            if app is not None:
                _attach(existing, app)
            return existing

        resolved = load_settings(settings, overrides)
        _check_combination(resolved)
        _warn_about_workers(resolved)
        capture = state.capture
        sentry = _plan_sentry(resolved, capture is not None, sentry_before_send)
        pipeline = build_pipeline(resolved, capture, sentry)
        if sentry is not None:
            _start_sentry(sentry, pipeline)
        handle = Otelkit(resolved, pipeline)
        state.current = handle
        if capture is not None:
            capture.adopt(handle)
        else:
            _install_globals(handle)
    _instrument_dependencies(handle, engine, redis)
    if app is not None:
        _attach(handle, app)
    return handle


def _plan_sentry(settings: OtelkitSettings, capturing: bool, before_send: BeforeSend | None) -> SentryBridge | None:
    if not settings.sentry.enabled or settings.sentry.dsn is None:
        return None
    from otelkit.sentry.client import plan_sentry  # sentry-sdk is imported only by services that use it

    return plan_sentry(settings, capturing=capturing, before_send=before_send)


def _start_sentry(sentry: SentryBridge, pipeline: Pipeline) -> None:
    """Before any dependency is instrumented, so Sentry's breadcrumb hooks sit beneath otelkit's."""
    try:
        sentry.start()
    except BaseException:
        pipeline.shutdown(timeout_seconds=5)
        raise


def _attach(handle: Otelkit, app: Any) -> None:
    """Sentry's request middleware goes in first, so otelkit's HTTP middleware (and its span) wraps it."""
    sentry = handle._pipeline.sentry
    if sentry is not None:
        sentry.instrument_app(app)
    handle.attach(app)


def _instrument_dependencies(handle: Otelkit, engine: Any, redis: Any) -> None:
    if engine is not None:
        handle.instrument_sqlalchemy(engine)
    if redis is not None:
        handle.instrument_redis(redis)


def _warn_about_workers(settings: OtelkitSettings) -> None:
    if not settings.prometheus.enabled:
        return
    workers = worker_count()
    if workers is not None and workers > 1:
        logger.warning(
            "otelkit: this process is one of %d server workers and serves %s itself: each scrape reaches one "
            "worker, so counters jump between workers' values. Export over OTLP instead (OTELKIT_OTLP__ENDPOINT) "
            "and set OTELKIT_PROMETHEUS__ENABLED=false.",
            workers,
            settings.prometheus.metrics_path,
        )


def _check_combination(settings: OtelkitSettings) -> None:
    if settings.metrics.histogram_aggregation == "exponential" and settings.prometheus.enabled:
        raise OtelkitConfigError(
            "setting metrics.histogram_aggregation (OTELKIT_METRICS__HISTOGRAM_AGGREGATION) = 'exponential': "
            "the embedded Prometheus endpoint cannot expose exponential histograms; set "
            "OTELKIT_PROMETHEUS__ENABLED=false and export over OTLP (OTELKIT_OTLP__ENDPOINT)"
        )


_installed_by_otelkit: list[object] = []


def _install_globals(handle: Otelkit) -> None:
    """Make otelkit's providers the global ones, unless something else already set them.

    OpenTelemetry lets a process set each global provider once, so after a ``shutdown()`` and
    a second ``init()`` the first handle's providers stay global; the warning says so.
    """
    kept = []
    for kind, current, proxy_type, setter, provider in (
        (
            "MeterProvider",
            metrics.get_meter_provider(),
            _ProxyMeterProvider,
            metrics.set_meter_provider,
            handle.meter_provider,
        ),
        (
            "TracerProvider",
            trace.get_tracer_provider(),
            trace.ProxyTracerProvider,
            trace.set_tracer_provider,
            handle.tracer_provider,
        ),
    ):
        if isinstance(current, proxy_type):
            setter(provider)  # type: ignore[operator]
            _installed_by_otelkit.append(provider)
        elif any(current is mine for mine in _installed_by_otelkit):
            kept.append(f"{kind} (set by an earlier otelkit.init(); OpenTelemetry allows it once per process)")
        else:
            kept.append(f"{kind} (set by the application)")
    if kept:
        logger.warning(
            "otelkit: leaving the global %s in place; otelkit's instruments use the new handle's providers "
            "(handle.meter_provider / handle.tracer_provider).",
            " and ".join(kept),
        )
