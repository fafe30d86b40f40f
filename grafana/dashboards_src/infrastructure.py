"""Infrastructure: host and process, database pools, queues and cache; then the exporters the stack runs."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .config import (
    CACHE_HIT_RATIO_CRITICAL,
    CACHE_HIT_RATIO_WARNING,
    EXPORTER_JOBS,
    EXPORTER_ROW_TITLE,
    FD_CRITICAL,
    FD_LIMIT,
    FD_WARNING,
    PROCESS_CPU_WARNING,
    RULES,
)
from .panels import Query, above, below, informational, row, stat_panel, timeseries_panel
from .selectors import RAW, or_zero, rate, ratio, share
from .skeleton import new_dashboard

PG, REDIS, NODE, NGINX = (f'job="{EXPORTER_JOBS[name]}"' for name in ("postgres", "redis", "node", "nginx"))
REAL_FS = f'{NODE}, fstype!~"tmpfs|overlay"'  # node_exporter reports pseudo file systems too


def build() -> Dashboard:
    dashboard = new_dashboard(
        "infrastructure",
        "Resources under the service: otelkit's system_*, database_connections_*, queue_depth and cache_* metrics, "
        "then the PostgreSQL, Redis, node and nginx exporters of the one-command stack.",
        ["infrastructure", "service-down"],
    )
    for title, panels in (
        ("Host and process (otelkit system metrics)", _host()),
        ("Database connection pools", _database()),
        ("Queues and cache", _queues_and_cache()),
        (EXPORTER_ROW_TITLE, _exporters()),
    ):
        dashboard = dashboard.with_row(row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return dashboard


def _host() -> list:
    return [
        timeseries_panel(
            "Host CPU usage",
            f"Share of host CPU busy, per instance's host; the dashed line is the {RULES.cpu_percent_warning:g}% "
            "of HostCpuUsageHigh (warning).",
            "percent",
            [Query(f"max by (instance) (system_cpu_usage_percent{{{RAW}}})", "{{instance}}")],
            above(RULES.cpu_percent_warning, None),
            runbooks=["infrastructure"],
            width=8,
            max_value=100,
        ),
        timeseries_panel(
            "Host memory usage",
            f"Share of host memory in use; the dashed line is the {RULES.memory_percent_critical:g}% of "
            "HostMemoryUsageHigh (critical).",
            "percent",
            [Query(f"max by (instance) (system_memory_usage_percent{{{RAW}}})", "{{instance}}")],
            above(None, RULES.memory_percent_critical),
            runbooks=["infrastructure"],
            width=8,
            max_value=100,
        ),
        timeseries_panel(
            "Disk usage by mount point",
            f"Share of each file system used (pseudo and overlay file systems are not reported); the dashed line "
            f"is the {RULES.disk_percent_warning:g}% of HostDiskUsageHigh (warning).",
            "percent",
            [Query(f"max by (mountpoint) (system_disk_usage_percent{{{RAW}}})", "{{mountpoint}}")],
            above(RULES.disk_percent_warning, None),
            runbooks=["infrastructure"],
            width=8,
            max_value=100,
        ),
        timeseries_panel(
            "Process resident memory (share of host)",
            f"Resident memory of each service process over its host's memory; red from "
            f"{RULES.memory_percent_critical:g}%, where HostMemoryUsageHigh pages for the whole host: a process "
            "that close to it is what fills the host.",
            "percentunit",
            [
                Query(
                    ratio(
                        f"sum by (instance) (system_process_resident_memory_bytes{{{RAW}}})",
                        f"max by (instance) (system_memory_total_bytes{{{RAW}}})",
                    ),
                    "{{instance}}",
                )
            ],
            above(None, RULES.memory_percent_critical / 100),
            runbooks=["infrastructure"],
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "Process CPU",
            f"CPU time each service process uses per second: 100% is one core fully busy. Orange from "
            f"{PROCESS_CPU_WARNING:.0%}: Python runs its bytecode on one core at a time (the GIL), so a process "
            "near one core is saturated whatever the host has left.",
            "percentunit",
            [Query(rate("system_process_cpu_seconds_total", by="instance"), "{{instance}}")],
            above(PROCESS_CPU_WARNING, None),
            width=8,
        ),
        timeseries_panel(
            "Process open file descriptors",
            f"Open file descriptors of each service process; a steady climb is a leak. Orange from {FD_WARNING}, "
            f"red from {FD_CRITICAL}: 80% and 95% of {FD_LIMIT}, the usual per-process soft limit (ulimit -n), at "
            "which new connections and files fail.",
            "short",
            [Query(f"sum by (instance) (system_process_open_fds{{{RAW}}})", "{{instance}}")],
            above(FD_WARNING, FD_CRITICAL),
            runbooks=["infrastructure"],
            width=8,
        ),
    ]


def _database() -> list:
    def gauge(name: str) -> str:
        return f"sum by (pool) (database_connections_{name}{{{RAW}}})"

    return [
        timeseries_panel(
            "Pool usage (in use / max)",
            f"Connections checked out over pool_size + max_overflow, per pool; the dashed line is the "
            f"{RULES.db_pool_usage_ratio_warning:.0%} of DatabasePoolAlmostExhausted. Pools with unlimited "
            "overflow have no maximum and no line here.",
            "percentunit",
            [Query(ratio(gauge("in_use"), gauge("max")), "{{pool}}")],
            above(RULES.db_pool_usage_ratio_warning, None),
            runbooks=["infrastructure"],
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "Connections by state",
            "Per pool: connections checked out, open and idle, open beyond pool_size (overflow), and the pool size.",
            "short",
            [
                Query(gauge("in_use"), "{{pool}} in use"),
                Query(gauge("idle"), "{{pool}} idle"),
                Query(gauge("overflow"), "{{pool}} overflow"),
                Query(gauge("pool_size"), "{{pool}} pool size"),
            ],
            informational(),
            width=8,
        ),
        timeseries_panel(
            "Checkout timeouts",
            "Checkouts per second that gave up after pool_timeout: requests that failed for want of a connection.",
            "ops",
            [Query(rate("database_connections_checkout_timeouts_total", by="pool"), "{{pool}}")],
            informational(),
            runbooks=["infrastructure"],
            width=8,
        ),
    ]


def _queues_and_cache() -> list:
    hits, misses = rate("cache_hits_total", by="cache"), rate("cache_misses_total", by="cache")
    # A cache that never missed has no cache_misses_total series (nor one that never hit a hits series):
    # each side counts as 0 where only the other exists, so the cache keeps its line.
    lookups = f"({or_zero(hits, misses)}\n+\n{or_zero(misses, hits)})"
    return [
        timeseries_panel(
            "Queue depth",
            f"Items waiting per queue; the dashed line is the {RULES.queue_depth_warning:g} of QueueDepthHigh "
            "(warning). Every instance reports the same queue, so the panel takes the largest.",
            "short",
            [Query(f"max by (queue) (queue_depth{{{RAW}}})", "{{queue}}")],
            above(RULES.queue_depth_warning, None),
            runbooks=["infrastructure"],
            width=8,
        ),
        timeseries_panel(
            "Cache hit ratio",
            f"Share of cache lookups that found their key, per cache (Redis GET, MGET, HGET ... replies). Orange "
            f"below {CACHE_HIT_RATIO_WARNING:.0%} (a cold or thrashing cache), red below "
            f"{CACHE_HIT_RATIO_CRITICAL:.0%} (it mostly adds a round trip).",
            "percentunit",
            [Query(share(hits, lookups), "{{cache}}")],
            below(CACHE_HIT_RATIO_CRITICAL, CACHE_HIT_RATIO_WARNING),
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "Cache lookups",
            "Cache lookups per second by cache and result.",
            "ops",
            [Query(hits, "{{cache}} hits"), Query(misses, "{{cache}} misses")],
            informational(),
            width=8,
        ),
    ]


def _exporters() -> list:
    jobs = "|".join(EXPORTER_JOBS.values())
    # redis_exporter always exports both counters (from INFO stats): a plain ratio cannot lose a series.
    keyspace_hits, keyspace_misses = (
        f"sum(rate(redis_keyspace_{result}_total{{{REDIS}}}[$__rate_interval]))" for result in ("hits", "misses")
    )
    return [
        stat_panel(
            "Exporters up",
            "Whether Prometheus reaches each exporter of the stack (up); an exporter down blinds its panels below.",
            "none",
            [Query(f'up{{job=~"{jobs}"}}', "{{job}}")],
            below(1),
            runbooks=["service-down"],
            width=8,
            height=8,
            mappings={"0": ("DOWN", "red"), "1": ("UP", "green")},
        ),
        timeseries_panel(
            "PostgreSQL backends by database",
            "Server processes connected to each database (postgres_exporter's pg_stat_database_numbackends).",
            "short",
            [Query(f"sum by (datname) (pg_stat_database_numbackends{{{PG}}})", "{{datname}}")],
            informational(),
            width=8,
        ),
        timeseries_panel(
            "PostgreSQL commits per second",
            "Committed transactions per second by database (pg_stat_database_xact_commit).",
            "ops",
            [Query(f"sum by (datname) (rate(pg_stat_database_xact_commit{{{PG}}}[$__rate_interval]))", "{{datname}}")],
            informational(),
            width=8,
        ),
        timeseries_panel(
            "Redis memory used",
            "Memory Redis has allocated (redis_exporter's redis_memory_used_bytes).",
            "bytes",
            [Query(f"sum by (instance) (redis_memory_used_bytes{{{REDIS}}})", "{{instance}}")],
            informational(),
            width=8,
        ),
        timeseries_panel(
            "Redis connected clients",
            "Client connections open to Redis.",
            "short",
            [Query(f"sum by (instance) (redis_connected_clients{{{REDIS}}})", "{{instance}}")],
            informational(),
            width=8,
        ),
        timeseries_panel(
            "Redis keyspace hit ratio",
            f"Share of key lookups Redis answered from the keyspace, over every client (not only otelkit's); "
            f"orange below {CACHE_HIT_RATIO_WARNING:.0%}, red below {CACHE_HIT_RATIO_CRITICAL:.0%}.",
            "percentunit",
            [
                Query(
                    ratio(keyspace_hits, f"({keyspace_hits}\n+\n{keyspace_misses})"),
                    "hit ratio",
                )
            ],
            below(CACHE_HIT_RATIO_CRITICAL, CACHE_HIT_RATIO_WARNING),
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "Node CPU busy",
            f"Share of the host's CPU time not idle (node_exporter); dashed at {RULES.cpu_percent_warning:g}%.",
            "percentunit",
            [
                Query(
                    f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{NODE}, mode="idle"}}[$__rate_interval]))',
                    "{{instance}}",
                )
            ],
            above(RULES.cpu_percent_warning / 100, None),
            runbooks=["infrastructure"],
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "Node memory used",
            f"Share of memory not available (node_exporter); dashed at {RULES.memory_percent_critical:g}%.",
            "percentunit",
            [
                Query(
                    f"1 - sum by (instance) (node_memory_MemAvailable_bytes{{{NODE}}})\n"
                    f"/ sum by (instance) (node_memory_MemTotal_bytes{{{NODE}}})",
                    "{{instance}}",
                )
            ],
            above(None, RULES.memory_percent_critical / 100),
            runbooks=["infrastructure"],
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "Node file system used",
            f"Share of each real file system used (node_exporter); dashed at {RULES.disk_percent_warning:g}%.",
            "percentunit",
            [
                Query(
                    f"1 - max by (instance, mountpoint) (node_filesystem_avail_bytes{{{REAL_FS}}})\n"
                    f"/ max by (instance, mountpoint) (node_filesystem_size_bytes{{{REAL_FS}}})",
                    "{{instance}} {{mountpoint}}",
                )
            ],
            above(RULES.disk_percent_warning / 100, None),
            runbooks=["infrastructure"],
            width=8,
            max_value=1,
        ),
        timeseries_panel(
            "nginx requests per second",
            "Requests nginx served per second (nginx_exporter, from stub_status).",
            "reqps",
            [
                Query(
                    f"sum by (instance) (rate(nginx_http_requests_total{{{NGINX}}}[$__rate_interval]))", "{{instance}}"
                )
            ],
            informational(),
            width=8,
        ),
        timeseries_panel(
            "nginx active connections",
            "Client connections nginx holds open, waiting ones included.",
            "short",
            [Query(f"sum by (instance) (nginx_connections_active{{{NGINX}}})", "{{instance}}")],
            informational(),
            width=8,
        ),
    ]
