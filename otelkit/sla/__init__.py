"""SLA verification: the spec's targets, measured continuously, served at /sla/status and /sla/uptime.

otelkit.init(app)                                                   # in-process windows
otelkit.init(app, sla={"prometheus_url": "http://prometheus:9090"})  # fleet-wide, from the rules
"""

from __future__ import annotations

from otelkit.sla.incidents import Incident, IncidentLog, incidents_from_samples
from otelkit.sla.inprocess import InProcessSource
from otelkit.sla.monitor import SlaMonitor
from otelkit.sla.prometheus import PrometheusSource, PrometheusUnavailable, record_names
from otelkit.sla.targets import SLA_WINDOWS, WINDOW_SECONDS, Target, status_document, targets
from otelkit.sla.uptime import CheckUptime, Uptime, uptime_document
from otelkit.sla.windows import RollingWindows, Totals, bucket_quantile

__all__ = [
    "SLA_WINDOWS",
    "WINDOW_SECONDS",
    "CheckUptime",
    "InProcessSource",
    "Incident",
    "IncidentLog",
    "PrometheusSource",
    "PrometheusUnavailable",
    "RollingWindows",
    "SlaMonitor",
    "Target",
    "Totals",
    "Uptime",
    "bucket_quantile",
    "incidents_from_samples",
    "record_names",
    "status_document",
    "targets",
    "uptime_document",
]
