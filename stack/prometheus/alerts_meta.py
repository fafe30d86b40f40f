"""Alerts about the alerting itself: the Watchdog heartbeat and key metrics gone missing."""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .liveness import EVIDENCE_SERIES, last_seen_record, service_info
from .promql import with_service
from .rules_config import Config, KeyMetric


def watchdog(config: Config) -> dict[str, Any]:
    # Valued with the scrape targets that answer, so the heartbeat carries a number worth a glance;
    # `or vector(0)` keeps it firing with no target at all.
    return alert(
        "Watchdog",
        "count(up == 1) or vector(0)",
        for_="0s",
        severity="info",
        family="watchdog",
        runbook="infrastructure",
        labels={"service": config.watchdog_service},
        summary="Always firing: proves that Prometheus evaluates rules and Alertmanager delivers.",
        description=(
            "This alert fires all the time and is routed to the heartbeat receiver. If the heartbeat "
            "service stops hearing it, the alerting pipeline (Prometheus, Alertmanager or the path "
            "between them) is broken. {{ $value }} scrape target(s) answer right now."
        ),
    )


def metric_absent(config: Config, key: KeyMetric) -> dict[str, Any]:
    # Valued with the time since the metric was last seen; only for a live service (a dead one is
    # ServiceDown's), and without a lookback window that would end the alert while it is still true.
    gone = (
        f"(\n"
        f"  time() - {last_seen_record(key.metric)}\n"
        f"  unless on (job)\n"
        f"  {key.metric}\n"
        f")\n"
        f"and on (job)\n"
        f"{service_info(config)}"
    )
    return alert(
        key.alert,
        with_service(gone),
        for_=config.absent_for,
        severity=key.severity,
        family=key.family,
        runbook=key.runbook,
        labels={"evidence": EVIDENCE_SERIES},
        summary=f"{key.metric} has disappeared from a live service.",
        description=(
            f"{{{{ $labels.service }}}} is up (it exports target_info) but has not exported {key.metric} for "
            "{{ $value | humanizeDuration }}: it lost the instrument or no longer records it, and the alerts "
            "on it cannot fire."
        ),
    )


def absent_rules(config: Config, area: str) -> list[dict[str, Any]]:
    """The absence alerts of the key metrics that belong in ``area``'s rule file."""
    return [metric_absent(config, key) for key in config.key_metrics if key.area == area]
