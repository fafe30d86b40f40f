"""API alerts (service down, error rate, latency) and the SLO/SLA alerts on the HTTP request metrics."""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .liveness import liveness_rules
from .promql import guarded, number
from .recording import quantile_name
from .rules_config import Config


def http_error_rate(config: Config) -> dict[str, Any]:
    window = config.error_ratio_window
    condition = f"job:http_requests:error_ratio_rate{window} > {number(config.error_ratio_critical)}"
    return alert(
        "HttpErrorRateHigh",
        guarded(condition, f"job:http_requests:rate{window}", window, config.http_min_requests),
        for_=config.error_ratio_for,
        severity="critical",
        family="api-errors",
        runbook="api-errors",
        summary=f"More than {config.error_ratio_critical:.0%} of HTTP requests fail with a server error.",
        description=(
            "{{ $value | humanizePercentage }} of {{ $labels.service }}'s requests returned 5xx over the last "
            f"{window} (threshold {config.error_ratio_critical:.0%})."
        ),
    )


def http_latency(config: Config) -> dict[str, Any]:
    window = config.latency_window
    p = quantile_name(config.latency_quantile)
    record = f"job:http_request_duration_seconds:{p}_rate{window}"
    condition = f"{record} > {number(config.latency_threshold_seconds)}"
    threshold_ms = round(config.latency_threshold_seconds * 1000)
    return alert(
        f"HttpLatency{p.upper()}High",
        guarded(condition, f"job:http_requests:rate{window}", window, config.http_min_requests),
        for_=config.latency_for,
        severity="warning",
        family="api-latency",
        runbook="api-latency",
        summary=f"HTTP {p.upper()} latency is above {threshold_ms} ms.",
        description=(
            f"{p.upper()} latency of {{{{ $labels.service }}}} over the last {window} is "
            f"{{{{ $value | humanizeDuration }}}} (threshold {threshold_ms} ms)."
        ),
    )


def error_budget_burn(config: Config) -> list[dict[str, Any]]:
    budget = round(1 - config.slo_availability, 10)
    rules = []
    for pair in config.burn_rate_windows:
        threshold = f"({number(pair.factor)} * {number(budget)})"
        both = (
            f"job:http_requests:error_ratio_rate{pair.long} > {threshold}\n"
            f"and on (job, service)\n"
            f"job:http_requests:error_ratio_rate{pair.short} > {threshold}"
        )
        rules.append(
            alert(
                "HttpErrorBudgetBurn",
                guarded(both, f"job:http_requests:rate{pair.long}", pair.long, config.slo_min_requests),
                for_=pair.for_,
                severity=pair.severity,
                family="api-errors",
                runbook="api-errors",
                labels={"long": pair.long, "short": pair.short},
                summary=(
                    f"The {config.slo_availability:.1%} availability SLO's error budget is "
                    f"{'burning fast' if pair.severity == 'critical' else 'burning slowly, but steadily'}."
                ),
                description=(
                    f"{{{{ $labels.service }}}} is burning its error budget at {number(pair.factor)}x the sustainable "
                    f"rate: {{{{ $value | humanizePercentage }}}} of requests failed over the last {pair.long}, "
                    f"and more than {number(pair.factor)} x {number(budget * 100)}% over the last {pair.short}."
                ),
            )
        )
    return rules


def sla_violation(config: Config) -> list[dict[str, Any]]:
    """ServiceSLAViolated: one rule per SLA target, over the window ``/sla/status`` judges compliance on.

    The four rules share the name and differ in ``sla_target``, so the alert fires when any target is
    breached and its description says which one, with the value in that target's unit. Each target
    breaks exactly where ``/sla/status`` calls it non-compliant (availability < 99.5%, error rate
    > 1%, average >= 1 s, P95 > 500 ms); tests/sla checks that these thresholds and the window are
    otelkit.settings.SlaSettings's defaults.
    """
    window = config.sla_window
    p = quantile_name(config.latency_quantile)
    percent, duration = "{{ $value | humanizePercentage }}", "{{ $value | humanizeDuration }}"
    breaches = [
        (
            "availability",
            f"job:http_requests:availability_ratio_rate{window} < {number(config.sla_availability)}",
            f"Availability is below the {config.sla_availability:.1%} SLA.",
            f"served {percent} of its requests without a server error over the last {window} "
            f"(SLA: at least {config.sla_availability:.1%}).",
        ),
        (
            "error_rate",
            f"job:http_requests:error_ratio_rate{window} > {number(config.sla_error_ratio)}",
            f"The error rate is above the {config.sla_error_ratio:.0%} SLA.",
            f"answered {percent} of its requests with a server error over the last {window} "
            f"(SLA: at most {config.sla_error_ratio:.0%}).",
        ),
        (
            "average_response_seconds",
            f"job:http_request_duration_seconds:mean_rate{window} >= {number(config.sla_average_seconds)}",
            f"The average response time is not below the {number(config.sla_average_seconds)} s SLA.",
            f"answered in {duration} on average over the last {window} "
            f"(SLA: below {number(config.sla_average_seconds)} s).",
        ),
        (
            "p95_response_seconds",
            f"job:http_request_duration_seconds:{p}_rate{window} > {number(config.sla_p95_seconds)}",
            f"The {p.upper()} response time is above the {round(config.sla_p95_seconds * 1000)} ms SLA.",
            f"answered 95% of its requests within {duration} over the last {window} "
            f"(SLA: at most {round(config.sla_p95_seconds * 1000)} ms).",
        ),
    ]
    return [
        alert(
            "ServiceSLAViolated",
            guarded(condition, f"job:http_requests:rate{window}", window, config.http_min_requests),
            for_=config.sla_for,
            severity="critical",
            family="api-errors" if target in ("availability", "error_rate") else "api-latency",
            runbook="api-errors" if target in ("availability", "error_rate") else "api-latency",
            labels={"sla_target": target},
            summary=summary,
            description=f"{{{{ $labels.service }}}} {description}",
        )
        for target, condition, summary, description in breaches
    ]


def api_rules(config: Config) -> list[dict[str, Any]]:
    return [*liveness_rules(config), http_error_rate(config), http_latency(config)]


def slo_rules(config: Config) -> list[dict[str, Any]]:
    return [*error_budget_burn(config), *sla_violation(config)]
