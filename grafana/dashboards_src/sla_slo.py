"""SLA / SLO: availability against 99.5%, error budget and burn rate, P95 against 500 ms, synthetic checks."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable
from grafana_foundation_sdk.models.dashboard import VariableRefresh, VariableSort

from .config import (
    BUDGET_REMAINING_WARNING,
    CHECK,
    ERROR_BUDGET,
    RULES,
    SLA_AVERAGE_RESPONSE_SECONDS,
    SYNTHETIC_SUCCESS_RESULT,
)
from .panels import DATASOURCE, GREEN, ORANGE, RED, Query, above, below, row, stat_panel, timeseries_panel
from .selectors import quantile, recorded, share
from .skeleton import new_dashboard

HISTOGRAM = "http_request_duration_seconds"
LATENCY = RULES.latency_threshold_seconds
TARGETS = (
    f"availability >= {RULES.slo_availability:.1%}, error rate <= {RULES.sla_error_ratio:.0%}, "
    f"P95 <= {LATENCY * 1000:.0f} ms, average < {SLA_AVERAGE_RESPONSE_SECONDS:g} s"
)


def check_variable() -> QueryVariable:
    return (
        QueryVariable("check")
        .label("Synthetic check")
        .description("Checks of the synthetic runner, by name (they probe services from outside).")
        .datasource(DATASOURCE)
        .query("label_values(synthetic_check_success, check)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def build() -> Dashboard:
    dashboard = new_dashboard(
        "sla",
        f"The spec's SLA targets ({TARGETS}) and the {RULES.slo_availability:.1%} availability SLO's error budget.",
        ["service-down", "api-errors", "api-latency"],
    ).with_variable(check_variable())
    for title, panels in (
        (f"SLA targets ({TARGETS})", _targets()),
        (f"Error budget (SLO {RULES.slo_availability:.1%}, 30-day budget)", _budget()),
        ("Synthetic checks", _synthetic()),
    ):
        dashboard = dashboard.with_row(row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return dashboard


def _targets() -> list:
    return [
        stat_panel(
            "Availability (1d)",
            f"Share of requests not answered with a 5xx over the last day, all instances; red below the "
            f"{RULES.sla_availability:.1%} SLA (ServiceSLAViolated looks at the same day).",
            "percentunit",
            [Query(recorded("job:http_requests:availability_ratio_rate1d"), "{{service}}")],
            below(RULES.sla_availability),
            runbooks=["service-down"],
            decimals=3,
        ),
        stat_panel(
            "Error rate (1d)",
            f"Share of requests answered with a 5xx over the last day; red above the SLA's "
            f"{RULES.sla_error_ratio:.0%}.",
            "percentunit",
            [Query(recorded("job:http_requests:error_ratio_rate1d"), "{{service}}")],
            above(None, RULES.sla_error_ratio),
            runbooks=["api-errors"],
            decimals=3,
        ),
        stat_panel(
            "P95 response time (1d)",
            f"95th percentile of request duration over the last day; red above {LATENCY * 1000:.0f} ms "
            "(job:http_request_duration_seconds:p95_rate1d, exact at the 0.5 s bucket boundary).",
            "s",
            [Query(recorded("job:http_request_duration_seconds:p95_rate1d"), "{{service}}")],
            above(None, LATENCY),
            runbooks=["api-latency"],
        ),
        stat_panel(
            "Average response time (1d)",
            f"Mean request duration over the last day; red from the SLA's {SLA_AVERAGE_RESPONSE_SECONDS:g} s "
            "(job:http_request_duration_seconds:mean_rate1d).",
            "s",
            [Query(recorded("job:http_request_duration_seconds:mean_rate1d"), "{{service}}")],
            above(None, SLA_AVERAGE_RESPONSE_SECONDS),
            runbooks=["api-latency"],
        ),
    ]


def _budget() -> list:
    burn = RULES.burn_rate_windows
    return [
        stat_panel(
            "Error budget remaining (30d)",
            f"Share of the 30-day error budget ({ERROR_BUDGET:.1%} of requests may fail) still unspent: "
            f"1 - (5xx share over 30 days) / {ERROR_BUDGET:g}. Below 0 the SLO is broken for the month.",
            "percentunit",
            [Query(f"1 - {recorded('job:http_requests:error_ratio_rate30d')} / {ERROR_BUDGET:g}", "{{service}}")],
            below(0, BUDGET_REMAINING_WARNING),
            runbooks=["api-errors"],
            width=8,
            height=8,
            decimals=1,
        ),
        timeseries_panel(
            "Error budget burn rate",
            "How many times faster than sustainable the budget burns (error ratio / "
            f"{ERROR_BUDGET:g}), over the alert windows. Dashed lines: "
            + ", ".join(f"{w.factor:g}x over {w.long} ({w.severity})" for w in burn)
            + ". A burn of 1x spends exactly the budget in 30 days.",
            "short",
            [
                Query(
                    f"{recorded(f'job:http_requests:error_ratio_rate{w.long}')} / {ERROR_BUDGET:g}",
                    f"{{{{service}}}} {w.long}",
                )
                for w in burn
            ],
            [(None, GREEN), *sorted((w.factor, RED if w.severity == "critical" else ORANGE) for w in burn)],
            runbooks=["api-errors"],
            width=16,
            height=8,
        ),
        timeseries_panel(
            f"Availability vs the {RULES.slo_availability:.1%} target",
            "Share of requests not answered with a 5xx over 5 minutes and over a day; the dashed line is the target.",
            "percentunit",
            [
                Query(recorded("job:http_requests:availability_ratio_rate5m"), "{{service}} 5m"),
                Query(recorded("job:http_requests:availability_ratio_rate1d"), "{{service}} 1d"),
            ],
            below(RULES.slo_availability),
            runbooks=["service-down"],
            min_value=None,
            max_value=1,
        ),
        timeseries_panel(
            f"P95 response time vs {LATENCY * 1000:.0f} ms",
            "95th percentile of request duration: the 5-minute value the alert evaluates, and the dashboard's own "
            "interval (whose exemplars link to traces). Dashed: the threshold.",
            "s",
            [
                Query(recorded("job:http_request_duration_seconds:p95_rate5m"), "{{service}} (5m, alerted)"),
                Query(quantile(RULES.latency_quantile, HISTOGRAM, "job"), "{{job}}", exemplars=True),
            ],
            above(None, LATENCY),
            runbooks=["api-latency"],
        ),
    ]


def _synthetic() -> list:
    success = f'result="{SYNTHETIC_SUCCESS_RESULT}"'
    return [
        stat_panel(
            "Check status",
            "Result of each synthetic check's last run: UP when it passed (synthetic_check_success = 1).",
            "none",
            [Query(f"min by (check) (synthetic_check_success{{{CHECK}}})", "{{check}}")],
            below(1),
            runbooks=["service-down"],
            height=8,
            mappings={"0": ("DOWN", "red"), "1": ("UP", "green")},
        ),
        stat_panel(
            "Check uptime (30d)",
            f"Share of each check's runs that passed over 30 days (job_check:synthetic_checks:success_ratio_rate30d); "
            f"red below the {RULES.sla_availability:.1%} availability target.",
            "percentunit",
            [Query(f"min by (check) (job_check:synthetic_checks:success_ratio_rate30d{{{CHECK}}})", "{{check}}")],
            below(RULES.sla_availability),
            runbooks=["service-down"],
            height=8,
            decimals=2,
        ),
        timeseries_panel(
            "Check success ratio",
            f"Share of each check's runs that passed, over the dashboard's interval and over the last hour "
            f"(recorded); the dashed line is the {RULES.sla_availability:.1%} availability target.",
            "percentunit",
            [
                Query(
                    share(
                        f"sum by (check) (rate(synthetic_checks_total{{{CHECK}, {success}}}[$__rate_interval]))",
                        f"sum by (check) (rate(synthetic_checks_total{{{CHECK}}}[$__rate_interval]))",
                    ),
                    "{{check}}",
                ),
                Query(
                    f"min by (check) (job_check:synthetic_checks:success_ratio_rate1h{{{CHECK}}})",
                    "{{check}} (1h, recorded)",
                ),
            ],
            below(RULES.sla_availability),
            runbooks=["service-down"],
            max_value=1,
        ),
        timeseries_panel(
            "Check duration (P95)",
            "95th percentile of each check's duration (synthetic_check_duration_seconds); dashed at the SLA's "
            f"{SLA_AVERAGE_RESPONSE_SECONDS:g} s. Exemplars link to the check's trace.",
            "s",
            [
                Query(
                    f"histogram_quantile({RULES.latency_quantile}, sum by (check, le) "
                    f"(rate(synthetic_check_duration_seconds_bucket{{{CHECK}}}[$__rate_interval])))",
                    "{{check}}",
                    exemplars=True,
                )
            ],
            above(None, SLA_AVERAGE_RESPONSE_SECONDS),
            runbooks=["api-latency"],
            width=24,
        ),
    ]
