"""SLA rules (rules/sla.yml): the four targets over 1h, 1d, 7d and 30d, from HTTP and synthetic metrics.

``/sla/status`` (otelkit.sla, Prometheus mode) reads, per service ``job`` and window:

- ``job:http_requests:availability_ratio_rate<w>``: share of requests without a 5xx;
- ``job:http_requests:error_ratio_rate<w>``: share of requests with a 5xx;
- ``job:http_request_duration_seconds:mean_rate<w>``: average response time;
- ``job:http_request_duration_seconds:p95_rate<w>``: P95 response time (exact at the 0.5 s boundary);
- ``job:http_request_duration_seconds:over_p95_target_ratio_rate<w>``: share of requests slower than the
  P95 target (0.5 s, a bucket bound): the P95's error budget is 5% of requests.

``/sla/uptime`` reads the same four over the synthetic runs, for the runner's ``job`` (``job:``)
and per ``check`` (``job_check:``): ``synthetic_checks:success_ratio_rate<w>`` (uptime),
``synthetic_checks:error_ratio_rate<w>`` (runs that did not succeed), and
``synthetic_check_duration_seconds:mean_rate<w>`` / ``:p95_rate<w>`` (whole runs, all steps).
Rates are summed over the runner's instances, so two runners' runs count together.

A record another group already writes (``error_ratio_rate1h`` for the burn-rate alerts, the 1d
availability for ServiceSLAViolated) is not written twice: it is the same series either way.
The 7d and 30d records read weeks of raw samples, so their group runs every ``sla_long_interval``.
"""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .promql import indent, number, rate_sum, recording, seconds, with_service
from .recording import quantile_name, recording_groups
from .rules_config import Config

SHORT_GROUP = "otelkit-sla.rules"
LONG_GROUP = "otelkit-sla-long.rules"
ALERT_GROUP = "otelkit-sla"


def share(metric: str, window: str, part: str, by: str) -> str:
    """Share of ``metric``'s rate matching ``part``, grouped ``by`` (0, not nothing, when none match)."""
    total = rate_sum(metric, window, by=by)
    return f"(\n  {rate_sum(metric, window, part, by=by)}\n  or\n  0 * {total}\n)\n/\n{total}"


def _http(config: Config, window: str) -> list[dict[str, Any]]:
    errors = f'status=~"{config.http_error_status_regex}"'
    buckets = rate_sum("http_request_duration_seconds_bucket", window, by="job, le")
    mean = (
        f"{rate_sum('http_request_duration_seconds_sum', window)}\n/\n"
        f"{rate_sum('http_request_duration_seconds_count', window)}"
    )
    p = quantile_name(config.latency_quantile)
    # Requests at or below the P95 target (a bucket bound, so exact): the P95's error budget is the rest.
    at_target = 'le="' + number(config.sla_p95_seconds) + '"'
    fast = (
        f"{rate_sum('http_request_duration_seconds_bucket', window, at_target)}\n/\n"
        f"{rate_sum('http_request_duration_seconds_count', window)}"
    )
    return [
        recording(
            f"job:http_requests:error_ratio_rate{window}",
            with_service(share("http_requests_total", window, errors, "job")),
        ),
        recording(
            f"job:http_requests:availability_ratio_rate{window}",
            with_service(f"1 - (\n{share('http_requests_total', window, errors, 'job')}\n)"),
        ),
        recording(f"job:http_request_duration_seconds:mean_rate{window}", with_service(mean)),
        recording(
            f"job:http_request_duration_seconds:{p}_rate{window}",
            with_service(f"histogram_quantile({config.latency_quantile}, {buckets})"),
        ),
        recording(
            f"job:http_request_duration_seconds:over_{p}_target_ratio_rate{window}",
            with_service(f"1 - (\n{indent(fast)}\n)"),
        ),
    ]


def _synthetic(config: Config, window: str) -> list[dict[str, Any]]:
    """The same four measures as for HTTP, over the runs of the synthetic checks (all, and per check)."""
    p = quantile_name(config.latency_quantile)
    rules = []
    for level, by in (("job", "job"), ("job_check", "job, check")):
        buckets = rate_sum("synthetic_check_duration_seconds_bucket", window, by=f"{by}, le")
        mean = (
            f"{rate_sum('synthetic_check_duration_seconds_sum', window, by=by)}\n/\n"
            f"{rate_sum('synthetic_check_duration_seconds_count', window, by=by)}"
        )
        rules += [
            recording(
                f"{level}:synthetic_checks:rate{window}",
                with_service(rate_sum("synthetic_checks_total", window, by=by)),
            ),
            recording(
                f"{level}:synthetic_checks:success_ratio_rate{window}",
                with_service(share("synthetic_checks_total", window, 'result="success"', by)),
            ),
            recording(
                f"{level}:synthetic_checks:error_ratio_rate{window}",
                with_service(share("synthetic_checks_total", window, 'result!="success"', by)),
            ),
            recording(f"{level}:synthetic_check_duration_seconds:mean_rate{window}", with_service(mean)),
            recording(
                f"{level}:synthetic_check_duration_seconds:{p}_rate{window}",
                with_service(f"histogram_quantile({config.latency_quantile}, {buckets})"),
            ),
        ]
    return rules


def sla_groups(config: Config) -> list[dict[str, Any]]:
    """Recording groups (short and long windows) and the synthetic SLA alert."""
    written = {rule["record"] for group in recording_groups(config) for rule in group["rules"]}
    short: list[dict[str, Any]] = []
    long: list[dict[str, Any]] = []
    for window in config.sla_windows:
        target = long if seconds(window) > seconds(config.sla_short_max_window) else short
        target.extend(
            rule for rule in [*_http(config, window), *_synthetic(config, window)] if rule["record"] not in written
        )
    return [
        {"name": SHORT_GROUP, "rules": short},
        {"name": LONG_GROUP, "interval": config.sla_long_interval, "rules": long},
        {"name": ALERT_GROUP, "rules": [synthetic_sla_violation(config)]},
    ]


def synthetic_sla_violation(config: Config) -> dict[str, Any]:
    """A check that succeeded in less than the SLA's availability over the SLA window.

    ServiceSLAViolated judges the requests a service served; a service that is unreachable serves
    none and so breaks no request-based ratio. The synthetic runs see it from outside.
    """
    window = config.sla_window
    condition = f"job_check:synthetic_checks:success_ratio_rate{window} < {number(config.sla_availability)}"
    runs = f"job_check:synthetic_checks:rate{window} * {seconds(window)} >= {config.synthetic_min_runs}"
    return alert(
        "SyntheticCheckSLAViolated",
        f"(\n{indent(condition)}\n)\nand on (job, service, check)\n  {runs}",
        for_=config.sla_for,
        severity="critical",
        family="api-availability",
        runbook="service-down",
        summary=f"A synthetic check succeeded in less than {config.sla_availability:.1%} of its runs.",
        description=(
            "Check {{ $labels.check }} of {{ $labels.service }} succeeded in {{ $value | humanizePercentage }} of its "
            f"runs over the last {window} (SLA: {config.sla_availability:.1%} available)."
        ),
    )
