"""Alerts about the alerting itself: the Watchdog heartbeat and key metrics gone missing."""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .promql import with_service
from .rules_config import Config, KeyMetric


def watchdog(config: Config) -> dict[str, Any]:
    return alert(
        "Watchdog",
        "vector(1)",
        for_="0s",
        severity="info",
        family="watchdog",
        runbook="infrastructure",
        labels={"service": config.watchdog_service},
        summary="Always firing: proves that Prometheus evaluates rules and Alertmanager delivers.",
        description=(
            "This alert fires all the time and is routed to the heartbeat receiver. If the heartbeat "
            "service stops hearing it, the alerting pipeline (Prometheus, Alertmanager or the path "
            "between them) is broken."
        ),
    )


def metric_absent(config: Config, key: KeyMetric) -> dict[str, Any]:
    gone = (
        f"group by (job) (present_over_time({key.metric}[{config.absent_lookback}]))\n"
        f"unless\n"
        f"group by (job) ({key.metric})"
    )
    return alert(
        key.alert,
        with_service(gone),
        for_=config.absent_for,
        severity=key.severity,
        family=key.family,
        runbook=key.runbook,
        summary=f"{key.metric} has disappeared.",
        description=(
            f"{{{{ $labels.service }}}} exported {key.metric} within the last {config.absent_lookback} but has not "
            f"for {config.absent_for}: the service stopped, lost its metrics pipeline, or no longer records it, "
            "and the alerts on it cannot fire."
        ),
    )


def absent_rules(config: Config, area: str) -> list[dict[str, Any]]:
    """The absence alerts of the key metrics that belong in ``area``'s rule file."""
    return [metric_absent(config, key) for key in config.key_metrics if key.area == area]
