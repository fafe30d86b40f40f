"""otelkit: one call gives a FastAPI service the spec's metrics, traces and health endpoints.

import otelkit
otelkit.init(app, service={"name": "checkout", "version": "1.4.2"})
"""

from __future__ import annotations

from otelkit.bootstrap import init
from otelkit.errors import OtelkitConfigError
from otelkit.handle import Otelkit
from otelkit.instruments import (
    observe_active_users,
    observe_queue_depth,
    record_cache_hit,
    record_cache_miss,
    record_payment,
    record_registration,
    track_generation,
)
from otelkit.settings import (
    HealthSettings,
    HttpSettings,
    MetricsSettings,
    OtelkitSettings,
    OtlpSettings,
    PrometheusSettings,
    SentrySettings,
    ServiceSettings,
    TracingSettings,
)

__all__ = [
    "HealthSettings",
    "HttpSettings",
    "MetricsSettings",
    "Otelkit",
    "OtelkitConfigError",
    "OtelkitSettings",
    "OtlpSettings",
    "PrometheusSettings",
    "SentrySettings",
    "ServiceSettings",
    "TracingSettings",
    "init",
    "observe_active_users",
    "observe_queue_depth",
    "record_cache_hit",
    "record_cache_miss",
    "record_payment",
    "record_registration",
    "track_generation",
]
