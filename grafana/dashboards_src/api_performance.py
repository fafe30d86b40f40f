"""API Performance: request rate by endpoint, response-time heatmap, P95 against 500 ms, errors, status codes."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .config import RULES, SLA_AVERAGE_RESPONSE_SECONDS
from .panels import Query, above, below, heatmap_panel, informational, row, stat_panel, timeseries_panel
from .selectors import RAW, quantile, rate, ratio, recorded, share
from .skeleton import new_dashboard

HISTOGRAM = "http_request_duration_seconds"
ERRORS = f'status=~"{RULES.http_error_status_regex}"'
P95 = RULES.latency_quantile
LATENCY = RULES.latency_threshold_seconds


def build() -> Dashboard:
    dashboard = new_dashboard(
        "api",
        "HTTP traffic of otelkit services: http_requests_total and http_request_duration_seconds by route template.",
        ["api-errors", "api-latency", "service-down"],
    )
    dashboard = dashboard.with_row(row("Service overview (the recording rules the alerts use)"))
    for panel in _overview():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Traffic and errors"))
    for panel in _traffic():
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(row("Latency"))
    for panel in _latency():
        dashboard = dashboard.with_panel(panel)
    return dashboard


def _overview() -> list:
    return [
        stat_panel(
            "Request rate (5m)",
            "Requests per second over the last 5 minutes, all instances (job:http_requests:rate5m).",
            "reqps",
            [Query(recorded("job:http_requests:rate5m"), "{{service}}")],
            informational(),
            runbooks=["service-down"],
        ),
        stat_panel(
            "5xx error ratio (5m)",
            f"Share of requests answered with a 5xx over 5 minutes. Orange from the SLA's "
            f"{RULES.sla_error_ratio:.0%} error-rate target; red from {RULES.error_ratio_critical:.0%}, where "
            "HttpErrorRateHigh pages.",
            "percentunit",
            [Query(recorded("job:http_requests:error_ratio_rate5m"), "{{service}}")],
            above(RULES.sla_error_ratio, RULES.error_ratio_critical),
            runbooks=["api-errors"],
            decimals=2,
        ),
        stat_panel(
            "P95 response time (5m)",
            f"95th percentile of request duration over 5 minutes; red above {LATENCY * 1000:.0f} ms, where "
            "HttpLatencyP95High warns.",
            "s",
            [Query(recorded("job:http_request_duration_seconds:p95_rate5m"), "{{service}}")],
            above(None, LATENCY),
            runbooks=["api-latency"],
        ),
        stat_panel(
            "Availability (5m)",
            f"Share of requests not answered with a 5xx over 5 minutes; red below the "
            f"{RULES.slo_availability:.1%} SLO.",
            "percentunit",
            [Query(recorded("job:http_requests:availability_ratio_rate5m"), "{{service}}")],
            below(RULES.slo_availability),
            runbooks=["service-down"],
            decimals=2,
        ),
    ]


def _traffic() -> list:
    return [
        timeseries_panel(
            "Request rate by endpoint",
            "Requests per second by route template (handler); `unmatched` collects requests no route matched.",
            "reqps",
            [Query(rate("http_requests_total", by="handler"), "{{handler}}")],
            informational(),
        ),
        timeseries_panel(
            "Status code distribution",
            "Responses per second by status code, stacked. 499 is a client that went away before the response.",
            "reqps",
            [Query(rate("http_requests_total", by="status"), "{{status}}")],
            informational(),
            stacked=True,
        ),
        timeseries_panel(
            "Error rate (5xx share) by endpoint",
            f"Share of each endpoint's requests answered with a 5xx (4xx are the client's). The dashed lines are "
            f"the SLA target ({RULES.sla_error_ratio:.0%}) and the paging threshold "
            f"({RULES.error_ratio_critical:.0%}); the service line is the 5-minute ratio the alert evaluates.",
            "percentunit",
            [
                Query(
                    share(rate("http_requests_total", ERRORS, "handler"), rate("http_requests_total", by="handler")),
                    "{{handler}}",
                ),
                Query(recorded("job:http_requests:error_ratio_rate5m"), "{{service}} (5m, alerted)"),
            ],
            above(RULES.sla_error_ratio, RULES.error_ratio_critical),
            runbooks=["api-errors"],
            width=24,
        ),
    ]


def _latency() -> list:
    return [
        heatmap_panel(
            "Response time heatmap",
            "Requests per second in each latency bucket (rows: the http_request_duration_seconds buckets' upper "
            "bounds), averaged over the rate interval at each point in time. Dots are exemplars: click one to open "
            "the trace of that request.",
            "s",
            "reqps",
            Query(f"sum by (le) (rate({HISTOGRAM}_bucket{{{RAW}}}[$__rate_interval]))", "{{le}}", exemplars=True),
            runbooks=["api-latency"],
        ),
        timeseries_panel(
            "P95 response time by endpoint",
            f"95th percentile of request duration per route template; the dashed line is the "
            f"{LATENCY * 1000:.0f} ms threshold of HttpLatencyP95High. Exemplars link to traces.",
            "s",
            [
                Query(quantile(P95, HISTOGRAM, "handler"), "{{handler}}", exemplars=True),
                Query(recorded("job:http_request_duration_seconds:p95_rate5m"), "{{service}} (5m, alerted)"),
            ],
            above(None, LATENCY),
            runbooks=["api-latency"],
        ),
        timeseries_panel(
            "Latency percentiles (P50, P95, P99)",
            "Median, 95th and 99th percentile of request duration over every endpoint of the service. "
            "Exemplars link to traces.",
            "s",
            [
                Query(quantile(0.5, HISTOGRAM), "P50"),
                Query(quantile(P95, HISTOGRAM), "P95", exemplars=True),
                Query(quantile(0.99, HISTOGRAM), "P99"),
            ],
            above(None, LATENCY),
            runbooks=["api-latency"],
        ),
        timeseries_panel(
            "Average response time by endpoint",
            f"Mean request duration per route template; the SLA's target is an average under "
            f"{SLA_AVERAGE_RESPONSE_SECONDS:g} s (dashed line).",
            "s",
            [
                Query(
                    ratio(rate(f"{HISTOGRAM}_sum", by="handler"), rate(f"{HISTOGRAM}_count", by="handler")),
                    "{{handler}}",
                )
            ],
            above(None, SLA_AVERAGE_RESPONSE_SECONDS),
            runbooks=["api-latency"],
        ),
    ]
