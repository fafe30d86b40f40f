"""`init()`: one call from settings to a running metrics and trace pipeline."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics._internal import _ProxyMeterProvider

from otelkit._internal import state
from otelkit._internal.config import load_settings
from otelkit._internal.pipeline import build_pipeline
from otelkit._internal.workers import worker_count
from otelkit.errors import OtelkitConfigError
from otelkit.handle import Otelkit
from otelkit.settings import OtelkitSettings

logger = logging.getLogger("otelkit")


def init(
    app: Any = None,
    *,
    settings: OtelkitSettings | None = None,
    engine: Any = None,
    redis: Any = None,
    **overrides: Any,
) -> Otelkit:
    """Configure metrics and traces for this process and, given an app, add its routes.

        >>> handle = otelkit.init(app, service={"name": "checkout", "version": "1.4.2"})  # doctest: +SKIP
        >>> handle.shutdown()                                                          # doctest: +SKIP

    ``engine`` (a SQLAlchemy Engine or AsyncEngine) and ``redis`` (a redis.Redis or
    redis.asyncio.Redis) are traced, measured and health-checked; more of either can be added
    with ``handle.instrument_sqlalchemy()`` / ``handle.instrument_redis()``.

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
                existing.attach(app)
            return existing

        resolved = load_settings(settings, overrides)
        _check_combination(resolved)
        _warn_about_workers(resolved)
        capture = state.capture
        pipeline = build_pipeline(resolved, capture)
        handle = Otelkit(resolved, pipeline)
        state.current = handle
        if capture is not None:
            capture.adopt(handle)
        else:
            _install_globals(handle)
    _instrument_dependencies(handle, engine, redis)
    if app is not None:
        handle.attach(app)
    return handle


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
