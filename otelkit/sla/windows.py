"""Rolling windows kept in process: request counts, errors, duration sums and histogram buckets.

Counts live in one-minute slots for the last day and one-hour slots for the last 30 days, so
memory is fixed (2,160 slots) whatever the traffic, and a window sums at most 1,440 slots. The
1h and 1d windows therefore move in steps of a minute, 7d and 30d in steps of an hour.

Durations are bucketed with the same boundaries as ``http_request_duration_seconds`` and the
P95 is interpolated inside its bucket exactly as PromQL's ``histogram_quantile`` does, so the
in-process and Prometheus answers agree on the same requests.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MINUTE = 60
HOUR = 3600
DAY = 86400
_MINUTE_SLOTS = DAY // MINUTE
_HOUR_SLOTS = 30 * DAY // HOUR
_ID, _COUNT, _ERRORS, _SUM, _BUCKETS = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Totals:
    """What one window holds; ``buckets`` are per-bucket (not cumulative) counts, +Inf last."""

    count: int
    errors: int
    duration_sum: float
    buckets: tuple[int, ...]

    def error_ratio(self) -> float | None:
        return self.errors / self.count if self.count else None

    def success_ratio(self) -> float | None:
        return 1.0 - self.errors / self.count if self.count else None

    def mean(self) -> float | None:
        return self.duration_sum / self.count if self.count else None


def bucket_quantile(quantile: float, bounds: Sequence[float], buckets: Sequence[int]) -> float | None:
    """PromQL's ``histogram_quantile`` over per-bucket counts (``len(bounds) + 1`` of them, +Inf last)."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = quantile * total
    cumulative = 0
    for index, bound in enumerate(bounds):
        below = cumulative
        cumulative += buckets[index]
        if cumulative >= rank:
            start = bounds[index - 1] if index > 0 else 0.0
            if (index == 0 and bound <= 0) or buckets[index] == 0:
                return bound if index == 0 else start
            return start + (bound - start) * ((rank - below) / buckets[index])
    return bounds[-1] if bounds else None  # the rank is in the +Inf bucket: its lower bound, as PromQL answers


class RollingWindows:
    """Thread-safe counters over the last 30 days; `record` is the hot path (a bisect and two slot updates)."""

    def __init__(self, bounds: Sequence[float], clock: Callable[[], float] = time.time) -> None:
        self.bounds = tuple(bounds)
        self._clock = clock
        width = _BUCKETS + len(self.bounds) + 1
        self._minutes = [[-1] + [0] * (width - 1) for _ in range(_MINUTE_SLOTS)]
        self._hours = [[-1] + [0] * (width - 1) for _ in range(_HOUR_SLOTS)]
        self._lock = threading.Lock()

    def record(self, failed: bool, seconds: float) -> None:
        now = self._clock()
        column = _BUCKETS + bisect.bisect_left(self.bounds, seconds)  # the bucket whose `le` is >= seconds
        with self._lock:
            for ring, width in ((self._minutes, MINUTE), (self._hours, HOUR)):
                slot_id = int(now // width)
                slot = ring[slot_id % len(ring)]
                if slot[_ID] != slot_id:
                    slot[:] = [slot_id] + [0] * (len(slot) - 1)
                slot[_COUNT] += 1
                slot[_ERRORS] += failed
                slot[_SUM] += seconds
                slot[column] += 1

    def totals(self, window_seconds: int) -> Totals:
        """Everything recorded in the last ``window_seconds`` (rounded to whole slots)."""
        if window_seconds <= DAY:
            ring, width = self._minutes, MINUTE
        else:
            ring, width = self._hours, HOUR
        slots = min(len(ring), max(1, window_seconds // width))
        newest = int(self._clock() // width)
        oldest = newest - slots + 1
        count = errors = 0
        duration_sum = 0.0
        buckets = [0] * (len(self.bounds) + 1)
        with self._lock:
            for slot_id in range(oldest, newest + 1):
                slot = ring[slot_id % len(ring)]
                if slot[_ID] != slot_id:
                    continue
                count += slot[_COUNT]
                errors += slot[_ERRORS]
                duration_sum += slot[_SUM]
                for index, value in enumerate(slot[_BUCKETS:]):
                    buckets[index] += value
        return Totals(count, errors, duration_sum, tuple(buckets))
