"""What ``/sla/uptime`` reports: synthetic uptime per window, per check, and the incidents."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from otelkit.sla.incidents import Incident, iso
from otelkit.sla.targets import SLA_WINDOWS


@dataclass
class CheckUptime:
    up: bool | None
    """The last run's outcome (None before the first run)."""
    windows: dict[str, float | None] = field(default_factory=dict)
    """Share of successful runs per window."""


@dataclass
class Uptime:
    overall: dict[str, float | None]
    """Share of successful runs of all checks together, per window."""
    checks: dict[str, CheckUptime]
    incidents: list[Incident]


def uptime_document(uptime: Uptime, *, service: str, source: str, incident_lookback: str) -> dict[str, Any]:
    """The ``/sla/uptime`` body (shape documented in docs/metrics.md, "SLA endpoints")."""
    now = time.time()
    return {
        "service": service,
        "source": source,
        "generated_at": iso(now),
        "uptime": {window: _rounded(uptime.overall.get(window)) for window in SLA_WINDOWS},
        "checks": {
            name: {"up": check.up, "uptime": {window: _rounded(check.windows.get(window)) for window in SLA_WINDOWS}}
            for name, check in sorted(uptime.checks.items())
        },
        "incident_lookback": incident_lookback,
        "incidents": [incident.to_json(now) for incident in uptime.incidents],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 9)
