"""The handle `otelkit.init()` returns: providers, instruments, the /metrics endpoint, shutdown."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from otelkit._internal.exporters import MergesBoundHistograms
from otelkit._internal.overflow import OverflowWarner
from otelkit._internal.pipeline import METER_NAME, Pipeline
from otelkit.health import HealthChecks, redis_check, sqlalchemy_check, tcp_check
from otelkit.instrumentation.cache import CacheMetrics, instrument_redis
from otelkit.instrumentation.db import DatabaseMetrics, instrument_sqlalchemy
from otelkit.instrumentation.http import HttpMetrics
from otelkit.instruments.business import BusinessMetrics
from otelkit.instruments.system import SystemMetrics
from otelkit.settings import OtelkitSettings
from otelkit.sla.monitor import SlaMonitor

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("otelkit")


class Otelkit:
    """One configured pipeline. Use `otelkit.init()` to get it; `shutdown()` flushes and stops it."""

    def __init__(self, settings: OtelkitSettings, pipeline: Pipeline) -> None:
        self.settings = settings
        self._pipeline = pipeline
        self.meter: Meter = pipeline.meter_provider.get_meter(METER_NAME)
        self.tracer: Tracer = pipeline.tracer_provider.get_tracer(METER_NAME)
        self.business = BusinessMetrics(
            self.meter,
            cardinality_limit=settings.metrics.cardinality_limit,
            warner=pipeline.warner,
            bound_histograms=pipeline.bound_histograms,
            boundaries=settings.prometheus.default_buckets,
        )
        self.system = SystemMetrics(self.meter) if settings.metrics.system_metrics else None
        self._http_metrics: HttpMetrics | None = None
        self._database_metrics: DatabaseMetrics | None = None
        self._cache_metrics: CacheMetrics | None = None
        service = settings.service
        self.health = HealthChecks(
            settings.health.timeout_seconds,
            {"name": service.name, "version": service.version, "environment": service.environment},
        )
        if settings.otlp.endpoint is not None and pipeline.exporting:
            self.health.add("otlp", tcp_check(settings.otlp.endpoint))
        self.sla: SlaMonitor | None = None
        """``/sla/status`` and ``/sla/uptime``: in-process windows, or Prometheus's recording rules."""
        if settings.sla.enabled:
            self.sla = SlaMonitor(settings.sla, service=service.name, bounds=settings.prometheus.default_buckets)
        self._shutdown_lock = threading.Lock()
        self._is_shut_down = False

    @property
    def meter_provider(self) -> MeterProvider:
        return self._pipeline.meter_provider

    @property
    def tracer_provider(self) -> TracerProvider:
        return self._pipeline.tracer_provider

    @property
    def prometheus_registry(self) -> CollectorRegistry | None:
        """The registry behind the embedded endpoint (None when ``prometheus.enabled`` is off).

        Without a web app, serve it with ``prometheus_client.start_http_server(port, registry=...)``.
        """
        return self._pipeline.prometheus_registry

    @property
    def overflow_warner(self) -> OverflowWarner:
        """The pipeline's cardinality-overflow warner, for instruments built beside the handle's own
        (``otelkit.synthetic``): sharing it keeps the warning to one per metric."""
        return self._pipeline.warner

    def add_metric_reader(self, reader: MetricReader) -> None:
        """Read this handle's metrics with one more reader (the pytest capture's), otelkit's bound
        histograms included when the reader merges them."""
        if isinstance(reader, MergesBoundHistograms):
            reader.bound_histograms = self._pipeline.bound_histograms
        self.meter_provider.add_metric_reader(reader)

    def remove_metric_reader(self, reader: MetricReader) -> None:
        """Detach and shut down a reader added with `add_metric_reader`."""
        self.meter_provider.remove_metric_reader(reader)

    @property
    def http_metrics(self) -> HttpMetrics:
        """``http_requests_total`` and ``http_request_duration_seconds``, created with the first app."""
        if self._http_metrics is None:
            self._http_metrics = HttpMetrics(
                self.meter,
                cardinality_limit=self.settings.metrics.cardinality_limit,
                warner=self._pipeline.warner,
                status_label=self.settings.http.status_label,
                bound_histograms=self._pipeline.bound_histograms,
                boundaries=self.settings.prometheus.default_buckets,
            )
            if self.sla is not None and self.sla.in_process_source is not None:
                self._http_metrics.observer = self.sla.in_process_source.record_request
        return self._http_metrics

    @property
    def cache_metrics(self) -> CacheMetrics:
        """``cache_hits_total`` / ``cache_misses_total``, created on first use."""
        if self._cache_metrics is None:
            self._cache_metrics = CacheMetrics(
                self.meter, cardinality_limit=self.settings.metrics.cardinality_limit, warner=self._pipeline.warner
            )
        return self._cache_metrics

    def instrument_sqlalchemy(self, engine: Any, name: str | None = None) -> None:
        """Trace ``engine``'s queries, report its pool as ``database_connections_*{pool=name}``,
        and check it in ``/health/detailed``. ``name`` defaults to ``host:port/database``."""
        if self._database_metrics is None:
            self._database_metrics = DatabaseMetrics(
                self.meter, cardinality_limit=self.settings.metrics.cardinality_limit, warner=self._pipeline.warner
            )
        label = instrument_sqlalchemy(engine, self._database_metrics, self._tracing_provider(), name)
        self.health.add(f"database:{label}", sqlalchemy_check(engine))

    def instrument_redis(self, client: Any, cache: str = "redis") -> None:
        """Trace ``client``'s commands, count hits and misses as ``cache_*_total{cache=cache}``,
        and check it in ``/health/detailed``."""
        instrument_redis(client, self.cache_metrics, self._tracing_provider(), cache)
        self.health.add(f"redis:{cache}", redis_check(client))

    def _tracing_provider(self) -> TracerProvider | None:
        return self.tracer_provider if self.settings.tracing.enabled else None

    @property
    def is_shut_down(self) -> bool:
        return self._is_shut_down

    def attach(self, app: Any) -> None:
        """Instrument a FastAPI/Starlette app and add otelkit's routes (once per app)."""
        if getattr(app.state, "otelkit", None) is self:
            return
        from otelkit.instrumentation.fastapi import instrument_fastapi

        routes: list[tuple[str, Any]] = []
        health = self.settings.health
        if health.enabled:
            routes += [(health.path, self.health.liveness), (health.detailed_path, self.health.readiness)]
        if self.sla is not None:
            routes += [(self.settings.sla.status_path, self.sla.status_endpoint)]
            routes += [(self.settings.sla.uptime_path, self.sla.uptime_endpoint)]
        existing = {getattr(route, "path", None) for route in app.routes}
        own = [(path, endpoint) for path, endpoint in routes if path not in existing]
        for path, _ in routes:
            if path in existing:  # the application's own endpoint wins
                logger.info("otelkit: the app already serves %s; otelkit's endpoint there is not added", path)
        instrument_fastapi(app, self, own_paths=[path for path, _ in own])
        app.state.otelkit = self
        for path, endpoint in own:
            app.add_route(path, endpoint, methods=["GET"], include_in_schema=False)
        if self.prometheus_registry is not None:
            app.add_route(self.settings.prometheus.metrics_path, self.metrics_endpoint, include_in_schema=False)

    def metrics_endpoint(self, request: Request) -> Response:
        """Prometheus exposition (OpenMetrics when the scraper asks for it).

        Synchronous on purpose: Starlette runs it in its thread pool, so collection never
        blocks the event loop.
        """
        from starlette.responses import Response

        registry = self.prometheus_registry
        if registry is None:
            return Response("prometheus export is disabled\n", status_code=404)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    def force_flush(self, timeout_seconds: float = 10.0) -> bool:
        return self._pipeline.force_flush(timeout_seconds)

    def shutdown(self, timeout_seconds: float = 30.0) -> None:
        """Flush and stop exporters. Safe to call more than once; later calls do nothing."""
        from otelkit._internal import state

        with self._shutdown_lock:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        try:
            self._pipeline.shutdown(timeout_seconds)
        finally:
            with state.lock:
                if state.current is self:
                    state.current = None
