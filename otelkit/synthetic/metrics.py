"""The synthetic metrics, recorded through an otelkit handle's pipeline like every other metric.

- ``synthetic_checks_total{check,result}``: counter of runs by result (success, failure, slow, timeout, error);
- ``synthetic_check_success{check}``: gauge, 1 if the check's last run succeeded, else 0;
- ``synthetic_check_duration_seconds{check}``: histogram of whole runs, all steps.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otelkit._internal.bound import BoundCounter
from otelkit._internal.overflow import OverflowWarner
from otelkit.synthetic.execute import RESULTS, CheckResult

if TYPE_CHECKING:
    from otelkit.handle import Otelkit


class SyntheticMetrics:
    """The three instruments of one meter."""

    def __init__(self, meter: Meter, *, cardinality_limit: int, warner: OverflowWarner) -> None:
        self.runs = BoundCounter(
            meter,
            "synthetic_checks_total",
            ("check", "result"),
            description="Synthetic check runs by result.",
            cardinality_limit=cardinality_limit,
            warner=warner,
        )
        self.duration = meter.create_histogram(
            "synthetic_check_duration_seconds", unit="s", description="Duration of a synthetic check run, all steps."
        )
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            "synthetic_check_success",
            callbacks=[self._observe_success],
            description="1 if the check's last run succeeded, else 0.",
        )

    def declare(self, checks: Sequence[str]) -> None:
        """Create every ``(check, result)`` series at 0, so each starts from zero in Prometheus.

        A counter series that first appears at 1 loses that first run in ``rate()``; series that
        all start at 0 together give exact ratios.
        """
        for check in checks:
            for result in RESULTS:
                self.runs.cell((check, result))

    def record(self, outcome: CheckResult) -> None:
        self.runs.cell((outcome.check, outcome.result)).add(1.0)
        # Results arrive after the run's span has ended: recording under it gives the exemplar its trace.
        span = outcome.span_context
        context = trace.set_span_in_context(trace.NonRecordingSpan(span)) if span is not None else None
        self.duration.record(outcome.seconds, {"check": outcome.check}, context=context)
        with self._lock:
            self._last[outcome.check] = 1.0 if outcome.success else 0.0

    def _observe_success(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            last = list(self._last.items())
        return [Observation(value, {"check": check}) for check, value in last]


_by_handle: weakref.WeakKeyDictionary[Otelkit, SyntheticMetrics] = weakref.WeakKeyDictionary()
_by_handle_lock = threading.Lock()


def metrics_for(handle: Otelkit) -> SyntheticMetrics:
    """The handle's synthetic instruments, created once: a second set would double every series."""
    with _by_handle_lock:
        found = _by_handle.get(handle)
        if found is None:
            found = SyntheticMetrics(
                handle.meter,
                cardinality_limit=handle.settings.metrics.cardinality_limit,
                warner=handle.overflow_warner,
            )
            _by_handle[handle] = found
        return found
