"""Recording rules: the per-service rates and ratios that alerts and Grafana panels share.

Names follow ``level:metric:operation`` (``job:http_requests:error_ratio_rate5m``); every series
carries ``job`` and ``service`` (a copy of ``job``).
"""

from __future__ import annotations

from typing import Any

from .liveness import last_seen_group
from .promql import rate_sum, ratio, recording, seconds, with_service
from .rules_config import Config


def http_windows(config: Config) -> list[str]:
    """Every window an HTTP alert or panel reads, shortest first."""
    windows = {config.error_ratio_window, config.latency_window, config.dashboard_window, config.sla_window}
    for pair in config.burn_rate_windows:
        windows.update((pair.long, pair.short))
    return sorted(windows, key=seconds)


def quantile_name(quantile: float) -> str:
    return f"p{round(quantile * 100)}"


def _http(config: Config) -> list[dict[str, Any]]:
    errors = f'status=~"{config.http_error_status_regex}"'
    rules = []
    for window in http_windows(config):
        rules.append(
            recording(f"job:http_requests:rate{window}", with_service(rate_sum("http_requests_total", window)))
        )
        rules.append(
            recording(
                f"job:http_requests:error_ratio_rate{window}",
                with_service(ratio("http_requests_total", window, errors)),
            )
        )
    for window in sorted({config.dashboard_window, config.sla_window}, key=seconds):
        availability = f"1 - (\n{ratio('http_requests_total', window, errors)}\n)"
        rules.append(recording(f"job:http_requests:availability_ratio_rate{window}", with_service(availability)))
    for window in sorted({config.latency_window, config.dashboard_window}, key=seconds):
        buckets = rate_sum("http_request_duration_seconds_bucket", window, by="job, le")
        quantile = f"histogram_quantile({config.latency_quantile}, {buckets})"
        name = f"job:http_request_duration_seconds:{quantile_name(config.latency_quantile)}_rate{window}"
        rules.append(recording(name, with_service(quantile)))
    return rules


def _business(config: Config) -> list[dict[str, Any]]:
    rules = []
    for window in sorted({config.dashboard_window, config.payment_window}, key=seconds):
        rules.append(
            recording(f"job:payment_requests:rate{window}", with_service(rate_sum("payment_requests_total", window)))
        )
        failed = ratio("payment_requests_total", window, 'status!="success"')
        rules.append(recording(f"job:payment_requests:failure_ratio_rate{window}", with_service(failed)))
    for window in sorted({config.dashboard_window, config.generation_window}, key=seconds):
        rate = rate_sum("generation_requests_total", window)
        rules.append(recording(f"job:generation_requests:rate{window}", with_service(rate)))
        succeeded = ratio("generation_requests_total", window, 'status="success"')
        rules.append(recording(f"job:generation_requests:success_ratio_rate{window}", with_service(succeeded)))
    return rules


def recording_groups(config: Config) -> list[dict[str, Any]]:
    return [
        {"name": "otelkit-http.rules", "rules": _http(config)},
        {"name": "otelkit-business.rules", "rules": _business(config)},
        last_seen_group(config),
    ]
