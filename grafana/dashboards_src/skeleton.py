"""What every otelkit dashboard shares: uid and title, the template variables, and the links between them."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    TimePicker,
)
from grafana_foundation_sdk.models.common import TimeZoneBrowser
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from .config import DASHBOARD_TITLES, DASHBOARD_UIDS, PROMETHEUS_UID
from .panels import DATASOURCE, dashboard_link, runbook

# Services are whatever reports OpenTelemetry's target_info (every otelkit service, through the collector
# or scraped directly); the collector's own target_info has no telemetry_sdk_name and stays out of the list.
SERVICE_VALUES = 'label_values(target_info{telemetry_sdk_name="opentelemetry"}, job)'
INSTANCE_VALUES = 'label_values(target_info{telemetry_sdk_name="opentelemetry", job=~"$service"}, instance)'


def datasource_variable() -> DatasourceVariable:
    return (
        DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("The Prometheus holding the otelkit services' metrics (provisioned: uid otelkit-prometheus).")
        .current(VariableOption(text="Prometheus", value=PROMETHEUS_UID, selected=True))
    )


def service_variable() -> QueryVariable:
    return (
        QueryVariable("service")
        .label("Service")
        .description("The service (Prometheus job = OpenTelemetry service.name).")
        .datasource(DATASOURCE)
        .query(SERVICE_VALUES)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
    )


def instance_variable() -> QueryVariable:
    return (
        QueryVariable("instance")
        .label("Instance")
        .description(
            "One process of the service (service.instance.id). Service-level panels built on recording rules "
            "aggregate every instance, as the alerts do, and ignore this choice."
        )
        .datasource(DATASOURCE)
        .query(INSTANCE_VALUES)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def new_dashboard(key: str, description: str, runbooks: Sequence[str]) -> Dashboard:
    """A dashboard with the three variables, links to the other otelkit dashboards and to ``runbooks``."""
    others = [dashboard_link(other) for other in DASHBOARD_UIDS if other != key]
    return (
        Dashboard(DASHBOARD_TITLES[key])
        .uid(DASHBOARD_UIDS[key])
        .description(description)
        .tags(["otelkit", "generated"])
        .readonly()  # changed in code (grafana/dashboards_src) and regenerated, never in the UI
        .timezone(TimeZoneBrowser)
        .time("now-3h", "now")
        .refresh("30s")
        .timepicker(TimePicker().refresh_intervals(["30s", "1m", "5m", "15m"]))
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .with_variable(service_variable())
        .with_variable(instance_variable())
        .links(others + [runbook(name) for name in runbooks])
    )
