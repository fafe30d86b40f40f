"""Every uid, threshold and selector the dashboards share, in one place.

Thresholds come from the alerting rules' config (``stack/prometheus/rules_config.py``) so that a line drawn
on a panel is exactly where its alert fires; changing a threshold there changes both after regeneration.
"""

from __future__ import annotations

from stack.prometheus.rules_config import CONFIG as RULES
from stack.prometheus.rules_config import RUNBOOKS

__all__ = [
    "ALERTMANAGER_UID",
    "BUDGET_REMAINING_WARNING",
    "CACHE_HIT_RATIO_CRITICAL",
    "CACHE_HIT_RATIO_WARNING",
    "CHECK",
    "DASHBOARD_TITLES",
    "DASHBOARD_UIDS",
    "ERROR_BUDGET",
    "EXEMPLAR_TRACE_ID_LABEL",
    "EXPORTER_JOBS",
    "EXPORTER_ROW_TITLE",
    "FD_CRITICAL",
    "FD_LIMIT",
    "FD_WARNING",
    "INSTANCE",
    "PROCESS_CPU_WARNING",
    "PROMETHEUS_UID",
    "RULES",
    "RUNBOOKS",
    "SERVICE",
    "SLA_AVERAGE_RESPONSE_SECONDS",
    "SYNTHETIC_SUCCESS_RESULT",
    "TRACE_LINK_ENV",
]

# Fixed datasource uids: the dashboards' datasource variable defaults to PROMETHEUS_UID, and
# grafana/provisioning/datasources/otelkit.yaml provisions exactly these (tests/grafana checks both sides).
PROMETHEUS_UID = "otelkit-prometheus"
ALERTMANAGER_UID = "otelkit-alertmanager"

# Dashboard uids are the stable part of every link between dashboards (/d/<uid>).
DASHBOARD_UIDS: dict[str, str] = {
    "api": "otelkit-api-performance",
    "business": "otelkit-business-kpis",
    "infrastructure": "otelkit-infrastructure",
    "sla": "otelkit-sla-slo",
}
DASHBOARD_TITLES: dict[str, str] = {
    "api": "otelkit / API Performance",
    "business": "otelkit / Business KPIs",
    "infrastructure": "otelkit / Infrastructure",
    "sla": "otelkit / SLA & SLO",
}

# The selectors every raw-series query carries. Through the collector `job` is the OpenTelemetry
# service.name and `instance` the service.instance.id; the variables are named for what a user picks.
SERVICE = 'job=~"$service"'
# Recording rules aggregate `by (job)` and have no instance: they take SERVICE only.
INSTANCE = 'instance=~"$instance"'

# The exporters the stacks run beside the services, by their scrape job names in stack/prometheus/prometheus.yml
# (tests/grafana/test_provisioning.py keeps the two in step). Their panels live in one row, whose selectors
# name the exporter's job instead of $service/$instance.
EXPORTER_ROW_TITLE = "Exporters (one-command stack)"
EXPORTER_JOBS: dict[str, str] = {"postgres": "postgres", "redis": "redis", "node": "node", "nginx": "nginx"}

# The label Prometheus stores an exemplar's trace id under (the collector's prometheus exporter writes
# trace_id/span_id); the provisioned datasource turns it into a link to the trace in Sentry, under the
# organization URL Grafana reads from TRACE_LINK_ENV (stack/compose.yaml sets it for the grafana service).
EXEMPLAR_TRACE_ID_LABEL = "trace_id"
TRACE_LINK_ENV = "OTELKIT_SENTRY_ORG_URL"

# The SLO's error budget as a ratio of requests (99.5% availability leaves 0.5%).
ERROR_BUDGET = round(1 - RULES.slo_availability, 6)

# The spec's SLA target "< 1 s average response time" (no alert uses it, so it lives here, not in the rules).
SLA_AVERAGE_RESPONSE_SECONDS = 1.0
# Error budget remaining: red once it is spent, orange with a quarter left (time to slow down releases).
BUDGET_REMAINING_WARNING = 0.25

# The synthetic runner (issue 8): `synthetic_checks_total{check, result}` counts runs by result; this is
# the result of a passed check. Its panels select by `check`, not by service: the runner is a service of
# its own and a check is named for what it probes.
SYNTHETIC_SUCCESS_RESULT = "success"
CHECK = 'check=~"$check"'

# Levels no alert uses, drawn where a panel has a value worth a colour (no alert fires on them: they say where
# to look first).
# A cache that answers fewer than 80% of lookups is cold or thrashing; under half it mostly adds a round trip.
CACHE_HIT_RATIO_WARNING = 0.8
CACHE_HIT_RATIO_CRITICAL = 0.5
# Python runs its bytecode on one core at a time (the GIL): a process near one full core is saturated.
PROCESS_CPU_WARNING = 0.8
# The usual soft limit on open files of a Linux process (ulimit -n); at it, accept() and open() fail (EMFILE).
FD_LIMIT = 1024
FD_WARNING = int(FD_LIMIT * 0.8)
FD_CRITICAL = int(FD_LIMIT * 0.95)
