"""The otelkit dashboards, one module each; ``DASHBOARDS`` maps the JSON file name to its builder."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import api_performance, business_kpis, infrastructure, sla_slo

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "api-performance": api_performance.build,
    "business-kpis": business_kpis.build,
    "infrastructure": infrastructure.build,
    "sla-slo": sla_slo.build,
}

__all__ = ["DASHBOARDS"]
