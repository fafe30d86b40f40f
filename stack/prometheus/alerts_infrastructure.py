"""Infrastructure alerts: host CPU, memory and disk, and the database connection pool."""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .promql import number, with_service
from .rules_config import Config

_PERCENT = '{{ $value | printf "%.1f" }}%'


def cpu(config: Config) -> dict[str, Any]:
    return alert(
        "HostCpuUsageHigh",
        with_service(f"system_cpu_usage_percent > {number(config.cpu_percent_warning)}"),
        for_=config.cpu_for,
        severity="warning",
        family="host-cpu",
        runbook="infrastructure",
        summary=f"Host CPU usage is above {number(config.cpu_percent_warning)}%.",
        description=(
            f"CPU of {{{{ $labels.instance }}}} ({{{{ $labels.service }}}}) has been above "
            f"{number(config.cpu_percent_warning)}% for {config.cpu_for}: {_PERCENT}."
        ),
    )


def memory(config: Config) -> dict[str, Any]:
    return alert(
        "HostMemoryUsageHigh",
        with_service(f"system_memory_usage_percent > {number(config.memory_percent_critical)}"),
        for_=config.memory_for,
        severity="critical",
        family="host-memory",
        runbook="infrastructure",
        summary=f"Host memory usage is above {number(config.memory_percent_critical)}%.",
        description=(
            f"Memory of {{{{ $labels.instance }}}} ({{{{ $labels.service }}}}) has been above "
            f"{number(config.memory_percent_critical)}% for {config.memory_for}: {_PERCENT} in use."
        ),
    )


def disk(config: Config) -> dict[str, Any]:
    return alert(
        "HostDiskUsageHigh",
        with_service(f"system_disk_usage_percent > {number(config.disk_percent_warning)}"),
        for_=config.disk_for,
        severity="warning",
        family="host-disk",
        runbook="infrastructure",
        summary=f"A file system is more than {number(config.disk_percent_warning)}% full.",
        description=(
            "{{ $labels.mountpoint }} on {{ $labels.instance }} ({{ $labels.service }}) is "
            f"{_PERCENT} full (threshold {number(config.disk_percent_warning)}%)."
        ),
    )


def database_pool(config: Config) -> dict[str, Any]:
    by = "job, instance, pool"
    usage = (
        f"max by ({by}) (database_connections_in_use)\n/\n"
        f"max by ({by}) (database_connections_max > 0)\n"
        f"> {number(config.db_pool_usage_ratio_warning)}"
    )
    return alert(
        "DatabasePoolAlmostExhausted",
        with_service(usage),
        for_=config.db_pool_for,
        severity="warning",
        family="database-pool",
        runbook="infrastructure",
        summary=f"A database connection pool is more than {config.db_pool_usage_ratio_warning:.0%} in use.",
        description=(
            "Pool {{ $labels.pool }} of {{ $labels.service }} ({{ $labels.instance }}) has had "
            "{{ $value | humanizePercentage }} of its connections (pool size + overflow) checked out for "
            f"{config.db_pool_for}; checkouts will start to time out."
        ),
    )


def infrastructure_rules(config: Config) -> list[dict[str, Any]]:
    return [cpu(config), memory(config), disk(config), database_pool(config)]
