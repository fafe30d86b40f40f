"""Business KPIs: generations (requests, success rate, in progress, duration), payments and revenue, users."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .config import RULES
from .panels import Query, above, below, informational, row, stat_panel, timeseries_panel
from .selectors import RAW, increase, quantile, rate, recorded, share
from .skeleton import new_dashboard


def build() -> Dashboard:
    dashboard = new_dashboard(
        "business",
        "What the service does for its users: generations, payments and registrations (otelkit's business helpers).",
        ["generation-failures", "payment-failures"],
    )
    for title, panels in (
        ("Generations", _generations()),
        ("Payments and revenue", _payments()),
        ("Users", _users()),
    ):
        dashboard = dashboard.with_row(row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return dashboard


def _generations() -> list:
    success = 'status="success"'
    return [
        stat_panel(
            "Generation success ratio (15m)",
            f"Share of generations that succeeded over 15 minutes, all instances; red below "
            f"{RULES.generation_success_ratio_warning:.0%}, where GenerationSuccessRateLow warns.",
            "percentunit",
            [Query(recorded("job:generation_requests:success_ratio_rate15m"), "{{service}}")],
            below(RULES.generation_success_ratio_warning),
            runbooks=["generation-failures"],
            decimals=1,
        ),
        stat_panel(
            "Generation rate (5m)",
            "Generations finished per second over 5 minutes, whatever their outcome (job:generation_requests:rate5m).",
            "ops",
            [Query(recorded("job:generation_requests:rate5m"), "{{service}}")],
            informational(),
        ),
        stat_panel(
            "Generations in progress",
            "Generations running now (active_generations), summed over the chosen instances.",
            "short",
            [Query(f"sum(active_generations{{{RAW}}})", "in progress")],
            informational(),
        ),
        stat_panel(
            "Generations in the time range",
            "Generations finished within the dashboard's time range, every outcome.",
            "short",
            [Query(increase("generation_requests_total"), "generations", instant=True)],
            informational(),
            decimals=0,
        ),
        timeseries_panel(
            "Generation requests by outcome",
            "Generations finished per second by status: success, failure (an exception) or timeout.",
            "ops",
            [Query(rate("generation_requests_total", by="status"), "{{status}}")],
            informational(),
            stacked=True,
        ),
        timeseries_panel(
            "Generation success rate by model",
            f"Share of each model's generations that succeeded; the dashed line is the "
            f"{RULES.generation_success_ratio_warning:.0%} warning threshold, the service line the 15-minute ratio "
            "the alert evaluates.",
            "percentunit",
            [
                Query(
                    share(
                        rate("generation_requests_total", success, "model_type"),
                        rate("generation_requests_total", by="model_type"),
                    ),
                    "{{model_type}}",
                ),
                Query(recorded("job:generation_requests:success_ratio_rate15m"), "{{service}} (15m, alerted)"),
            ],
            below(RULES.generation_success_ratio_warning),
            runbooks=["generation-failures"],
            max_value=1,
        ),
        timeseries_panel(
            "Active generations by model",
            "Generations in progress by model type (a gauge read at each export).",
            "short",
            [Query(f"sum by (model_type) (active_generations{{{RAW}}})", "{{model_type}}")],
            informational(),
        ),
        timeseries_panel(
            "Generation duration (P50, P95) by model",
            "Median and 95th percentile of generation time per model, from generation_duration_seconds. "
            "Exemplars link to the trace of a generation.",
            "s",
            [
                Query(quantile(0.5, "generation_duration_seconds", "model_type"), "{{model_type}} P50"),
                Query(
                    quantile(RULES.latency_quantile, "generation_duration_seconds", "model_type"),
                    "{{model_type}} P95",
                    exemplars=True,
                ),
            ],
            informational(),
        ),
    ]


def _payments() -> list:
    return [
        stat_panel(
            "Revenue in the time range by currency",
            "Amount of successful payments within the time range, one value per currency (amounts are in each "
            "currency's major unit and never added across currencies).",
            "short",
            [Query(increase("payment_amount_total", by="currency"), "{{currency}}", instant=True)],
            informational(),
            width=8,
            decimals=2,
        ),
        stat_panel(
            "Payment failure ratio (15m)",
            f"Share of payment requests whose status is not success over 15 minutes, all instances; red above "
            f"{RULES.payment_failure_ratio_critical:.0%}, where PaymentFailureRateHigh pages.",
            "percentunit",
            [Query(recorded("job:payment_requests:failure_ratio_rate15m"), "{{service}}")],
            above(None, RULES.payment_failure_ratio_critical),
            runbooks=["payment-failures"],
            width=8,
            decimals=1,
        ),
        stat_panel(
            "Payment requests in the time range",
            "Payment requests within the time range, every provider and status.",
            "short",
            [Query(increase("payment_requests_total"), "payments", instant=True)],
            informational(),
            width=8,
            decimals=0,
        ),
        timeseries_panel(
            "Revenue per hour by currency and provider",
            "Amount of successful payments per hour (per-second rate x 3600), by currency and provider.",
            "short",
            [Query(f"{rate('payment_amount_total', by='currency, provider')} * 3600", "{{currency}} {{provider}}")],
            informational(),
        ),
        timeseries_panel(
            "Payment requests by provider and status",
            "Payment requests per second by provider and outcome.",
            "reqps",
            [Query(rate("payment_requests_total", by="provider, status"), "{{provider}} {{status}}")],
            informational(),
            runbooks=["payment-failures"],
            stacked=True,
        ),
    ]


def _users() -> list:
    return [
        timeseries_panel(
            "User registrations per hour by source",
            "Registrations per hour (per-second rate x 3600) by acquisition source.",
            "short",
            [Query(f"{rate('user_registrations_total', by='source')} * 3600", "{{source}}")],
            informational(),
            width=8,
        ),
        stat_panel(
            "Registrations in the time range",
            "New users within the time range, every source.",
            "short",
            [Query(increase("user_registrations_total"), "registrations", instant=True)],
            informational(),
            width=8,
            height=8,
            decimals=0,
        ),
        timeseries_panel(
            "Active users by timeframe",
            "Active users per window (1d, 7d, 30d ...) as the service counts them. Every instance reports the same "
            "count, so the panel takes the largest rather than adding them up.",
            "short",
            [Query(f"max by (timeframe) (active_users{{{RAW}}})", "{{timeframe}}")],
            informational(),
            width=8,
        ),
    ]
