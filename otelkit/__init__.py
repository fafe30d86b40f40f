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
from otelkit.sentry import add_breadcrumb, set_user
from otelkit.settings import (
    HealthSettings,
    HttpSettings,
    MetricsSettings,
    OtelkitSettings,
    OtlpSettings,
    PrometheusSettings,
    SentryPrivacySettings,
    SentrySettings,
    ServiceSettings,
    SlaSettings,
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
    "SentryPrivacySettings",
    "SentrySettings",
    "ServiceSettings",
    "SlaSettings",
    "TracingSettings",
    "add_breadcrumb",
    "init",
    "observe_active_users",
    "observe_queue_depth",
    "record_cache_hit",
    "record_cache_miss",
    "record_payment",
    "record_registration",
    "set_user",
    "track_generation",
]
