"""Incidents: the intervals a synthetic check was down, from its first failed run to its next success.

In process they come from the runs themselves; from Prometheus, from the samples of
``synthetic_check_success`` (so their edges have the scrape interval's resolution).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_KEPT = 1000
"""Closed incidents kept in process; a flapping check cannot grow memory without bound."""


@dataclass(frozen=True)
class Incident:
    check: str
    start: float
    end: float | None
    """None while the check is still down."""

    def to_json(self, now: float) -> dict[str, Any]:
        end = self.end if self.end is not None else now
        return {
            "check": self.check,
            "start": iso(self.start),
            "end": iso(self.end) if self.end is not None else None,
            "duration_seconds": round(end - self.start, 3),
            "ongoing": self.end is None,
        }


def iso(timestamp: float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2025-03-01T12:00:00.250Z``."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class IncidentLog:
    """Open and recently closed incidents of every check, fed one run at a time."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._open: dict[str, float] = {}
        self._closed: deque[Incident] = deque(maxlen=max_kept)
        self._lock = threading.Lock()

    def record(self, check: str, success: bool, at: float) -> None:
        with self._lock:
            if not success:
                self._open.setdefault(check, at)
            elif check in self._open:
                self._closed.append(Incident(check, self._open.pop(check), at))

    def since(self, start: float) -> list[Incident]:
        """Incidents that were open at some moment after ``start``, oldest first."""
        with self._lock:
            found = [incident for incident in self._closed if incident.end is not None and incident.end > start]
            found += [Incident(check, began, None) for check, began in self._open.items()]
        return sorted(found, key=lambda incident: (incident.start, incident.check))


def incidents_from_samples(check: str, samples: Iterable[tuple[float, float]]) -> list[Incident]:
    """Down intervals in a ``(timestamp, 0 or 1)`` series: from the first 0 to the next 1."""
    incidents = []
    down_since: float | None = None
    for timestamp, value in sorted(samples):
        if value < 1 and down_since is None:
            down_since = timestamp
        elif value >= 1 and down_since is not None:
            incidents.append(Incident(check, down_since, timestamp))
            down_since = None
    if down_since is not None:
        incidents.append(Incident(check, down_since, None))
    return incidents
