"""Is a service there at all: last-seen records, ServiceDown, InstanceDown, CollectorDown.

Behind the collector (the default setup) every service arrives through one scrape job, so `up` says
nothing about a service; its own series do. Each service instance exports OpenTelemetry's
``target_info``; when the instance dies the collector stops exporting its series after
``metric_expiration``. The last-seen records remember, per job, when a series was last there::

    job:target_info:last_seen_timestamp_seconds = max by (job) (timestamp(target_info))
                                                  or (the record itself, until retired_after old)

so "gone" is "remembered but not there now", and it stays true (the alert keeps firing) until the
series returns or the job retires, instead of ending when a lookback window slides past it.
"""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .promql import recording, seconds, selector, with_service
from .rules_config import Config

# The label that tells what an alert saw. `series-gone` alerts (a service or a key metric missing)
# are all muted by CollectorDown: a dead collector makes every one of them fire at once.
EVIDENCE_SCRAPE = "scrape-failed"
EVIDENCE_SERIES = "series-gone"


def last_seen_record(metric: str) -> str:
    """``job:<metric>:last_seen_timestamp_seconds``: when ``metric`` last had a sample, per job."""
    return f"job:{metric}:last_seen_timestamp_seconds"


def service_info(config: Config) -> str:
    return selector("target_info", config.service_info_selector)


def _last_seen(config: Config, metric_selector: str, record: str) -> dict[str, Any]:
    # Self-referencing: the record carries its own last value forward while the metric is missing,
    # and drops it once it is retired_after old. Prometheus keeps it across a restart (it is stored).
    expr = (
        f"max by (job) (timestamp({metric_selector}))\nor on (job)\n{record} > time() - {seconds(config.retired_after)}"
    )
    return recording(record, expr)


def last_seen_group(config: Config) -> dict[str, Any]:
    """The records: target_info's (is the service there) and each key metric's (is the metric there)."""
    rules = [_last_seen(config, service_info(config), last_seen_record("target_info"))]
    rules += [_last_seen(config, key.metric, last_seen_record(key.metric)) for key in config.key_metrics]
    return {"name": "otelkit-last-seen.rules", "rules": rules}


def _scrape_jobs(config: Config, collector: bool) -> str:
    regex = "|".join(config.collector_jobs)
    return f'job=~"{regex}"' if collector else f'job!~"{regex}"'


def _all_targets_down(up: str) -> str:
    """Per job, how many targets it has, where none of them is up."""
    return f"count by (job) ({up})\nunless on (job)\n{up} == 1"


def service_down_scraped(config: Config) -> dict[str, Any]:
    up = selector("up", _scrape_jobs(config, collector=False))
    return alert(
        "ServiceDown",
        with_service(_all_targets_down(up)),
        for_=config.service_down_for,
        severity="critical",
        family="api-availability",
        runbook="service-down",
        labels={"evidence": EVIDENCE_SCRAPE},
        summary="Every scrape target of a service is down.",
        description=(
            "All {{ $value }} scrape target(s) of {{ $labels.service }} have failed every scrape for "
            f"{config.service_down_for}."
        ),
    )


def service_down_series(config: Config) -> dict[str, Any]:
    gone = f"time() - {last_seen_record('target_info')}\nunless on (job)\n{service_info(config)}"
    return alert(
        "ServiceDown",
        with_service(gone),
        for_=config.service_down_for,
        severity="critical",
        family="api-availability",
        runbook="service-down",
        labels={"evidence": EVIDENCE_SERIES},
        summary="A service has stopped exporting metrics.",
        description=(
            "No instance of {{ $labels.service }} has exported metrics (target_info) for "
            "{{ $value | humanizeDuration }}: every instance stopped, or lost its way to the collector. "
            f"It keeps firing until the service returns, or for {config.retired_after} if it was retired."
        ),
    )


def instance_down(config: Config) -> dict[str, Any]:
    # Every job, the collector's included (a second collector replica keeps the pipeline up).
    up = "up"
    # The down target's labels, valued with how many targets of its job are still up.
    expr = f"({up} == 0)\n+ on (job) group_left ()\ncount by (job) ({up} == 1)"
    return alert(
        "InstanceDown",
        with_service(expr),
        for_=config.instance_down_for,
        severity="warning",
        family="instance",
        runbook="service-down",
        labels={"evidence": EVIDENCE_SCRAPE},
        summary="A scrape target is down while others of its service are up.",
        description=(
            "{{ $labels.instance }} of {{ $labels.service }} has failed every scrape for "
            f"{config.instance_down_for}; {{{{ $value }}}} other target(s) of the service are up."
        ),
    )


def collector_down(config: Config) -> dict[str, Any]:
    up = selector("up", _scrape_jobs(config, collector=True))
    return alert(
        "CollectorDown",
        _all_targets_down(up),
        for_=config.collector_down_for,
        severity="critical",
        family="api-availability",
        runbook="service-down",
        labels={"service": config.collector_service, "evidence": EVIDENCE_SCRAPE},
        summary="The OpenTelemetry Collector is down: no service behind it is monitored.",
        description=(
            "All {{ $value }} target(s) of scrape job {{ $labels.job }} have failed every scrape for "
            f"{config.collector_down_for}. Every service that exports through the collector is blind; "
            "their missing-metric alerts are inhibited while this fires."
        ),
    )


def liveness_rules(config: Config) -> list[dict[str, Any]]:
    return [
        collector_down(config),
        service_down_scraped(config),
        service_down_series(config),
        instance_down(config),
    ]
