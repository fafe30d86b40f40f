"""What ``/sla/uptime`` reports: synthetic uptime, error rate and latency per window, per check, and the incidents."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from otelkit.sla.incidents import Incident, iso
from otelkit.sla.targets import SLA_WINDOWS

MEASURES: tuple[str, ...] = ("uptime", "error_rate", "average_response_seconds", "p95_response_seconds")
"""What is measured over the synthetic runs, per window: the SLA's four targets as the checks see them.
``uptime`` is the share of successful runs; ``error_rate`` the share that did not succeed; the
latencies are of whole runs (every step), from ``synthetic_check_duration_seconds``."""

Measured = dict[str, dict[str, float | None]]
"""``{measure: {window: value or None}}``."""


@dataclass
class CheckUptime:
    up: bool | None
    """The last run's outcome (None before the first run)."""
    measured: Measured = field(default_factory=dict)


@dataclass
class Uptime:
    overall: Measured
    """All checks' runs together."""
    checks: dict[str, CheckUptime]
    incidents: list[Incident]


def uptime_document(uptime: Uptime, *, service: str, source: str, incident_lookback: str) -> dict[str, Any]:
    """The ``/sla/uptime`` body (shape documented in docs/metrics.md, "SLA endpoints")."""
    now = time.time()
    return {
        "service": service,
        "source": source,
        "generated_at": iso(now),
        **_measures(uptime.overall),
        "checks": {
            name: {"up": check.up, **_measures(check.measured)} for name, check in sorted(uptime.checks.items())
        },
        "incident_lookback": incident_lookback,
        "incidents": [incident.to_json(now) for incident in uptime.incidents],
    }


def _measures(measured: Measured) -> dict[str, dict[str, float | None]]:
    return {
        measure: {window: _rounded(measured.get(measure, {}).get(window)) for window in SLA_WINDOWS}
        for measure in MEASURES
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 9)
