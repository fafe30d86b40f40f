"""Every threshold, window and selector of otelkit's Prometheus rules, in one place, each with why.

Change a value here, then regenerate the committed rule files::

    .venv/bin/python -m stack.prometheus.generate

``tests/stack/test_rules.py`` fails while ``stack/prometheus/rules/`` differs from a fresh generation,
and the hand-written ``promtool`` tests in ``stack/prometheus/tests/`` pin the spec's numbers, so a
threshold changed here without the tests (or the spec) changing fails too.

The ``service`` label of every alert is the Prometheus ``job`` (Watchdog and CollectorDown set their
own): through the collector ``job`` is the OpenTelemetry ``service.name``; on a direct scrape it is
the scrape job's name, which should then be the service name. Recording rules aggregate ``by (job)``
and copy ``job`` into ``service`` with ``label_replace``, so alerts, inhibition and routing all speak
of ``service``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["critical", "warning", "info"]

# The spec's runbook list ("Incident Response > Runbooks"), exactly as written there.
RUNBOOKS: dict[str, str] = {
    "api-errors": "https://runbooks.prodstack.local/api-errors",
    "api-latency": "https://runbooks.prodstack.local/api-latency",
    "service-down": "https://runbooks.prodstack.local/service-down",
    "generation-failures": "https://runbooks.prodstack.local/generation-failures",
    "payment-failures": "https://runbooks.prodstack.local/payment-failures",
    "infrastructure": "https://runbooks.prodstack.local/infrastructure",
}


@dataclass(frozen=True)
class BurnRateWindow:
    """One multi-window, multi-burn-rate pair (Google SRE workbook, "Alerting on SLOs", table 5-8)."""

    long: str
    short: str
    factor: float
    severity: Severity
    for_: str


@dataclass(frozen=True)
class KeyMetric:
    """A metric whose disappearance from a service is an alert of its own (the rules on it go blind)."""

    metric: str
    alert: str
    area: Literal["api", "business", "infrastructure"]  # the rule file it lives in
    family: str
    runbook: str
    severity: Severity


@dataclass(frozen=True)
class Config:
    # --- Service down ---------------------------------------------------------------------------------
    # Services behind the collector have no `up` of their own: prometheus.yml scrapes all of them
    # through one job. A service is alive while it exports OpenTelemetry's target_info (the SDK's
    # resource, one series per instance; the collector drops it metric_expiration after the last
    # push). The selector keeps the collector's own target_info out, as the dashboards do.
    service_info_selector: str = 'telemetry_sdk_name="opentelemetry"'
    # The scrape jobs of the collector: its prometheus exporter (every service's metrics) and its own
    # telemetry. They are one process, so their `up` is one alert, CollectorDown, with this service.
    collector_jobs: tuple[str, ...] = ("otel-services", "otel-collector")
    collector_service: str = "otel-collector"
    # One minute, shorter than service_down_for: a dead collector makes every service's target_info
    # vanish at once, and CollectorDown must reach Alertmanager first to inhibit those pages.
    collector_down_for: str = "1m"
    # Eight missed 15 s scrapes (or, behind the collector, two minutes after its metric_expiration
    # of 90 s drops the series): longer than the gap of a rolling restart, within the spec's 5 minutes.
    service_down_for: str = "2m"
    # One target of a job down while another is up: capacity lost, nothing down. A warning.
    instance_down_for: str = "5m"
    # How long a silent service, or a metric missing from a live one, keeps alerting: the last-seen
    # records forget a job (and the alerts end) this long after its last sample. A service gone for a
    # week is retired, not down; until then its page stays open instead of resolving by itself.
    retired_after: str = "7d"

    # --- HTTP errors (spec: error rate > 5% is critical) ---------------------------------------------
    # 5xx only: a 4xx is the client's mistake and must not page the service's owners.
    http_error_status_regex: str = "5.."
    error_ratio_critical: float = 0.05
    # Five minutes of requests: long enough to smooth a burst, short enough to page within minutes.
    error_ratio_window: str = "5m"
    # Two evaluations' worth of confirmation on top of the window; the spec wants a reaction < 5 min.
    error_ratio_for: str = "2m"
    # Fewer requests than this in a ratio's window is no ratio to page on: 5 failures of 20 requests
    # at night are 25%, yet one user's bad minute. Applies to every HTTP ratio and quantile alert.
    http_min_requests: int = 100

    # --- HTTP latency (spec: P95 > 500 ms is a warning) ----------------------------------------------
    latency_quantile: float = 0.95
    # 0.5 s is a bucket boundary of the SDK's histogram (the SDK refuses buckets without it), so
    # histogram_quantile is exact at the threshold instead of interpolating across it.
    latency_threshold_seconds: float = 0.5
    latency_window: str = "5m"
    # Slowness that lasts ten minutes is a trend worth an e-mail; a shorter one is a blip.
    latency_for: str = "10m"

    # --- Payments (spec: failure rate > 10% is critical; failure = status != "success") ---------------
    payment_failure_ratio_critical: float = 0.10
    # Payments are sparse next to API requests: fifteen minutes gathers enough attempts that a couple
    # of declined cards do not make the ratio.
    payment_window: str = "15m"
    payment_for: str = "5m"
    # Twenty attempts in the window: below that, three declined cards would already be 15%.
    payment_min_requests: int = 20

    # --- Generations (spec: success rate < 95% is a warning) -----------------------------------------
    generation_success_ratio_warning: float = 0.95
    # Generations take seconds each, so a quarter of an hour is needed for a meaningful ratio.
    generation_window: str = "15m"
    generation_for: str = "15m"
    generation_min_requests: int = 20

    # --- Queues and host resources (spec: warning / critical thresholds) -----------------------------
    queue_depth_warning: float = 500
    # A burst that drains within ten minutes is the queue doing its job.
    queue_depth_for: str = "10m"
    cpu_percent_warning: float = 90
    # CPU-bound work (a batch of generations) legitimately saturates a host for minutes.
    cpu_for: str = "15m"
    memory_percent_critical: float = 95
    # At 95% the OOM killer is close; five minutes rules out a garbage-collection spike.
    memory_for: str = "5m"
    disk_percent_warning: float = 90
    # Disks fill slowly; fifteen minutes ignores a temporary file that is written and removed.
    disk_for: str = "15m"

    # --- Database connection pool ---------------------------------------------------------------------
    # in_use / (pool size + max overflow) above 90% leaves one request burst before checkouts time out.
    db_pool_usage_ratio_warning: float = 0.9
    db_pool_for: str = "5m"

    # --- SLO: 99.5% availability (spec's SLA target), alerted as error-budget burn -------------------
    slo_availability: float = 0.995
    # The SRE workbook's pairs for a 30-day budget: 2% of the budget in 1h or 5% in 6h pages;
    # 10% in 1d or 10% in 3d opens a ticket (e-mail). The short window lets the alert resolve soon
    # after the burn stops. `for` follows kube-prometheus's KubeAPIErrorBudgetBurn.
    burn_rate_windows: tuple[BurnRateWindow, ...] = (
        BurnRateWindow("1h", "5m", 14.4, "critical", "2m"),
        BurnRateWindow("6h", "30m", 6, "critical", "15m"),
        BurnRateWindow("1d", "2h", 3, "warning", "1h"),
        BurnRateWindow("3d", "6h", 1, "warning", "3h"),
    )
    # Requests in the long window below which no burn-rate alert fires (the minimum-traffic guard):
    # at 14.4x the page needs 7.2% failures; with 100 requests that is at least 8 of them, not a handful.
    slo_min_requests: int = 100

    # --- SLA violation (spec: availability >= 99.5%, error rate <= 1%, average < 1 s, P95 <= 500 ms) --
    # ServiceSLAViolated fires when any target is breached, exactly where /sla/status calls it
    # non-compliant; tests/sla checks these values and the window against otelkit's SlaSettings.
    # Availability is request-based (1 - 5xx share), so at these targets it breaks first (0.5% errors);
    # the error-rate rule stays for a team that loosens availability.
    sla_availability: float = 0.995
    sla_error_ratio: float = 0.01
    sla_average_seconds: float = 1.0
    sla_p95_seconds: float = 0.5
    # A rolling day, the same window /sla/status judges compliance on (SlaSettings.compliance_window):
    # a spike that the burn-rate alerts catch is not yet an SLA breach, and the alert resolves within a
    # day of recovery instead of lingering for a month. /sla/status reports 7d and 30d beside it.
    sla_window: str = "1d"
    # The one-day ratio moves slowly; five minutes only absorbs evaluation jitter.
    sla_for: str = "5m"

    # --- SLA windows (rules/sla.yml: what /sla/status and /sla/uptime read in Prometheus mode) -------
    # An hour for "now", a day and a week for trends, 30 days for the monthly SLA promise. otelkit.sla
    # asks for exactly these four; tests/sla checks that each of its records is generated.
    sla_windows: tuple[str, ...] = ("1h", "1d", "7d", "30d")
    # Windows up to this one are recorded at every evaluation; longer ones read weeks of raw samples
    # per series, so their group runs every sla_long_interval (a 30-day ratio barely moves in 5m).
    sla_short_max_window: str = "1d"
    sla_long_interval: str = "5m"
    # SyntheticCheckSLAViolated needs this many runs of a check in sla_window: below 200, a single
    # failed run is already under 99.5%. At a 30 s interval that is the first 100 minutes of a check.
    synthetic_min_runs: int = 200

    # --- Missing data ---------------------------------------------------------------------------------
    # A key metric that a live service (target_info present) exported before, within retired_after,
    # but not now is missing: the alerts that read it are blind. It keeps firing while the service
    # lives without it, and ends when the metric returns or the service goes (ServiceDown's turn).
    # Ten minutes: long enough for a restarted service to export its gauges again.
    absent_for: str = "10m"
    key_metrics: tuple[KeyMetric, ...] = field(
        default=(
            KeyMetric(
                "http_requests_total", "HttpRequestsAbsent", "api", "api-availability", "service-down", "warning"
            ),
            # The P95 alert's input (the histogram's _count stands for all its series).
            KeyMetric(
                "http_request_duration_seconds_count",
                "HttpDurationMetricsAbsent",
                "api",
                "api-latency",
                "api-latency",
                "warning",
            ),
            # Each system gauge has its own callback (otelkit/instruments/system.py): one can fail
            # while the others keep reporting, so each has an absence alert of its own.
            KeyMetric(
                "system_cpu_usage_percent",
                "HostCpuMetricsAbsent",
                "infrastructure",
                "host-cpu",
                "infrastructure",
                "warning",
            ),
            KeyMetric(
                "system_memory_usage_percent",
                "HostMemoryMetricsAbsent",
                "infrastructure",
                "host-memory",
                "infrastructure",
                "warning",
            ),
            KeyMetric(
                "system_disk_usage_percent",
                "HostDiskMetricsAbsent",
                "infrastructure",
                "host-disk",
                "infrastructure",
                "warning",
            ),
            KeyMetric("queue_depth", "QueueDepthAbsent", "business", "queue", "infrastructure", "warning"),
            KeyMetric(
                "database_connections_max",
                "DatabasePoolMetricsAbsent",
                "infrastructure",
                "database-pool",
                "infrastructure",
                "warning",
            ),
            KeyMetric(
                "database_connections_in_use",
                "DatabasePoolUsageMetricsAbsent",
                "infrastructure",
                "database-pool",
                "infrastructure",
                "warning",
            ),
            # Counters appear with their first event after a restart, so a quiet service loses them
            # for a while: info (business hours e-mail), not a warning.
            KeyMetric(
                "generation_requests_total",
                "GenerationMetricsAbsent",
                "business",
                "generation",
                "generation-failures",
                "info",
            ),
            KeyMetric(
                "payment_requests_total", "PaymentMetricsAbsent", "business", "payments", "payment-failures", "info"
            ),
        )
    )

    # --- Dashboards -----------------------------------------------------------------------------------
    # The rate window Grafana panels read from the recorded ratios.
    dashboard_window: str = "5m"

    # --- Dead man's switch ----------------------------------------------------------------------------
    # The Watchdog's `service`: it belongs to no application, it proves the alerting pipeline works.
    watchdog_service: str = "alerting-pipeline"

    def __post_init__(self) -> None:
        """Refuse liveness settings the rules could not honour, naming the setting and its value."""
        durations = ("service_down_for", "collector_down_for", "instance_down_for", "retired_after", "absent_for")
        for name in durations:
            value = getattr(self, name)
            if not isinstance(value, str) or re.fullmatch(r"\d+[smhdw]", value) is None:
                raise ValueError(f"{name}={value!r}: expected a single-unit PromQL duration such as '2m' or '7d'")
        if _seconds(self.collector_down_for) >= _seconds(self.service_down_for):
            raise ValueError(
                f"collector_down_for={self.collector_down_for!r} must be shorter than service_down_for="
                f"{self.service_down_for!r}: CollectorDown has to reach Alertmanager first to inhibit the pages "
                "of the services behind a dead collector"
            )
        if not self.collector_jobs or not all(re.fullmatch(r"[A-Za-z_][\w-]*", job) for job in self.collector_jobs):
            raise ValueError(
                f"collector_jobs={self.collector_jobs!r}: expected one or more scrape job names (letters, digits, "
                "'_' or '-'), the jobs of prometheus.yml that scrape the collector"
            )


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(duration[:-1]) * units[duration[-1]]


CONFIG = Config()
