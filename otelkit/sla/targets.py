"""The four SLA targets, their windows, and the ``/sla/status`` document built from measured values.

Values come as ``{target key: {window: value or None}}`` from either source (in process or
Prometheus); compliance, the error budget and the overall status are computed here alike.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from otelkit.settings import SlaSettings
from otelkit.sla.incidents import iso

SLA_WINDOWS: tuple[str, ...] = ("1h", "1d", "7d", "30d")
WINDOW_SECONDS: dict[str, int] = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}

Comparison = Literal[">=", "<", "<="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<": operator.lt, "<=": operator.le}
Values = Mapping[str, Mapping[str, float | None]]


P95_QUANTILE = 0.95
OVER_P95_TARGET = "share_over_p95_target"
"""Values key: the share of requests slower than the P95 target (exact when the target is a bucket bound)."""


@dataclass(frozen=True)
class Target:
    key: str
    comparison: Comparison
    threshold: float
    budget: Literal["availability", "error_rate", "p95"] | None
    """How the error budget is counted. The P95's budget is the 5% of requests allowed to be slower than
    its target; the average has none (no count of 'bad' requests to spend: one very slow answer can
    break it alone)."""

    def compliant(self, value: float | None) -> bool | None:
        return None if value is None else _COMPARE[self.comparison](value, self.threshold)

    def budget_remaining(self, value: float | None, share_over_target: float | None = None) -> float | None:
        """Share of the error budget left: 1 untouched, 0 spent, negative overspent."""
        if self.budget == "p95":
            if share_over_target is None:
                return None
            return round(1.0 - share_over_target / (1.0 - P95_QUANTILE), 6)
        if value is None or self.budget is None:
            return None
        if self.budget == "availability":
            return round(1.0 - (1.0 - value) / (1.0 - self.threshold), 6)
        return round(1.0 - value / self.threshold, 6)


def targets(settings: SlaSettings) -> list[Target]:
    return [
        Target("availability", ">=", settings.availability, "availability"),
        Target("error_rate", "<=", settings.error_rate, "error_rate"),
        Target("average_response_seconds", "<", settings.average_response_seconds, None),
        Target("p95_response_seconds", "<=", settings.p95_response_seconds, "p95"),
    ]


def status_document(settings: SlaSettings, values: Values, *, service: str, source: str) -> dict[str, Any]:
    """The ``/sla/status`` body (shape documented in docs/metrics.md, "SLA endpoints")."""
    window = settings.compliance_window
    described: dict[str, Any] = {}
    verdicts = []
    for target in targets(settings):
        per_window = {name: _rounded(values.get(target.key, {}).get(name)) for name in SLA_WINDOWS}
        value = per_window[window]
        compliant = target.compliant(value)
        verdicts.append(compliant)
        described[target.key] = {
            "objective": f"{target.comparison} {target.threshold:g}",
            "target": target.threshold,
            "comparison": target.comparison,
            "window": window,
            "value": value,
            "compliant": compliant,
            "error_budget_remaining": target.budget_remaining(value, values.get(OVER_P95_TARGET, {}).get(window)),
            "windows": per_window,
        }
    if any(verdict is False for verdict in verdicts):
        overall = "violated"
    elif all(verdict is True for verdict in verdicts):
        overall = "compliant"
    else:
        overall = "unknown"
    return {
        "service": service,
        "source": source,
        "status": overall,
        "compliance_window": window,
        "generated_at": iso(time.time()),
        "targets": described,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 9)
