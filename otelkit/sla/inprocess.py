"""The embedded source: SLA values from this process's own requests and synthetic runs.

Correct for a service that runs as one process. Behind several workers or replicas each process
sees only its share of the traffic (and restarts forget it): configure ``sla.prometheus_url``
to read the fleet-wide recording rules instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from otelkit.sla.incidents import IncidentLog
from otelkit.sla.targets import OVER_P95_TARGET, SLA_WINDOWS, WINDOW_SECONDS
from otelkit.sla.uptime import MEASURES, CheckUptime, Measured, Uptime
from otelkit.sla.windows import RollingWindows, Totals, bucket_quantile

if TYPE_CHECKING:
    from otelkit.synthetic.execute import CheckResult

SERVER_ERROR = 500


class InProcessSource:
    name = "in-process"

    def __init__(self, bounds: Sequence[float], clock: Callable[[], float] = time.time) -> None:
        self._bounds = tuple(bounds)
        self._clock = clock
        self.http = RollingWindows(self._bounds, clock)
        self._all_checks = RollingWindows(self._bounds, clock)
        self._checks: dict[str, RollingWindows] = {}
        self._last: dict[str, bool] = {}
        self._incidents = IncidentLog()
        self._lock = threading.Lock()

    def record_request(self, status: int, seconds: float) -> None:
        """One HTTP request as the middleware recorded it; a 5xx is an error."""
        self.http.record(status >= SERVER_ERROR, seconds)

    def record_check(self, outcome: CheckResult) -> None:
        windows = self._checks.get(outcome.check)
        if windows is None:
            with self._lock:
                windows = self._checks.setdefault(outcome.check, RollingWindows(self._bounds, self._clock))
        failed = not outcome.success
        windows.record(failed, outcome.seconds)
        self._all_checks.record(failed, outcome.seconds)
        self._last[outcome.check] = outcome.success
        self._incidents.record(outcome.check, outcome.success, outcome.started_at)

    async def target_values(self, p95_target: float) -> dict[str, dict[str, float | None]]:
        measured = self._measured(self.http)
        over: dict[str, float | None] = {}
        for window in SLA_WINDOWS:
            over[window] = share_above(self.http.totals(WINDOW_SECONDS[window]), self._bounds, p95_target)
        return {"availability": measured.pop("uptime"), **measured, OVER_P95_TARGET: over}

    async def uptime(self, incident_lookback_seconds: int) -> Uptime:
        checks = {
            name: CheckUptime(up=self._last.get(name), measured=self._measured(windows))
            for name, windows in list(self._checks.items())
        }
        incidents = self._incidents.since(self._clock() - incident_lookback_seconds)
        return Uptime(self._measured(self._all_checks), checks, incidents)

    def _measured(self, windows: RollingWindows) -> Measured:
        measured: Measured = {measure: {} for measure in MEASURES}
        for window in SLA_WINDOWS:
            totals = windows.totals(WINDOW_SECONDS[window])
            measured["uptime"][window] = totals.success_ratio()
            measured["error_rate"][window] = totals.error_ratio()
            measured["average_response_seconds"][window] = totals.mean()
            measured["p95_response_seconds"][window] = bucket_quantile(0.95, self._bounds, totals.buckets)
        return measured


def share_above(totals: Totals, bounds: Sequence[float], threshold: float) -> float | None:
    """Share of the window's requests slower than ``threshold``: exact only at a bucket bound, else None."""
    if not totals.count or threshold not in bounds:
        return None
    at_or_below = sum(totals.buckets[: bounds.index(threshold) + 1])
    return (totals.count - at_or_below) / totals.count
