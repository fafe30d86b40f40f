"""Module-level helpers that record into the active `otelkit.init()` handle.

Each call looks the handle up when it records, so helpers set up at import time (a
``@track_generation`` decorator, an ``observe_queue_depth`` callback) work with an ``init()``
made later, and with a new handle after a shutdown. Recordings made while no handle is live go
to a detached set of instruments that nothing exports, with one warning: telemetry must never
break the code that calls it.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping

from opentelemetry.metrics import NoOpMeter

from otelkit._internal import state
from otelkit._internal.log_once import log_once
from otelkit._internal.overflow import OverflowWarner
from otelkit.instruments.business import (
    ACTIVE_USERS_CALLBACKS,
    QUEUE_DEPTH_CALLBACKS,
    BusinessMetrics,
    GenerationStatus,
    GenerationTracker,
)

logger = logging.getLogger("otelkit")
_detached: BusinessMetrics | None = None


def _business() -> BusinessMetrics:
    handle = state.current
    if handle is not None:
        return handle.business
    global _detached
    if _detached is None:
        logger.warning("otelkit: metrics recorded before otelkit.init() (or after shutdown) are discarded")
        _detached = BusinessMetrics(NoOpMeter("otelkit"), cardinality_limit=100, warner=OverflowWarner(100))
    return _detached


def track_generation(model_type: str) -> GenerationTracker:
    """``with track_generation("sdxl"):`` or ``@track_generation("sdxl")``: in-flight, duration, outcome.

    The handle is looked up as each block starts, so the decorator may be applied before ``init()``.
    """
    return GenerationTracker(None, model_type, _business)


def record_payment(provider: str, status: str, amount: float = 0.0, currency: str = "") -> None:
    """Count a payment request; a successful one adds ``amount`` (major units) to revenue."""
    _business().record_payment(provider, status, amount, currency)


def record_registration(source: str) -> None:
    _business().record_registration(source)


def _lookups(count: int) -> int | None:
    """A whole number of lookups, or None (logged once) for a count a counter cannot take: a
    negative or fractional one would read as a reset in Prometheus. Not raised: telemetry never
    breaks the code that calls it."""
    try:
        whole = operator.index(count)  # int, numpy integers; not float, str
    except TypeError:
        whole = -1
    if whole < 0:
        log_once("cache-count", "otelkit: cache lookups not counted: count must be a whole number >= 0, got %r", count)
        return None
    return whole


def record_cache_hit(cache: str, count: int = 1) -> None:
    """An application-level cache found what it was asked for (Redis reads are counted already)."""
    handle = state.current
    if handle is not None and (lookups := _lookups(count)) is not None:
        handle.cache_metrics.record(cache, lookups, 0)


def record_cache_miss(cache: str, count: int = 1) -> None:
    """An application-level cache did not have what it was asked for."""
    handle = state.current
    if handle is not None and (lookups := _lookups(count)) is not None:
        handle.cache_metrics.record(cache, 0, lookups)


def observe_active_users(callback: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
    """Register ``callback() -> {"1d": n, "7d": n, ...}``, read at every collection by every handle
    (also those created later); returns the call that unregisters it."""
    return ACTIVE_USERS_CALLBACKS.register(callback)


def observe_queue_depth(callback: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
    """Register ``callback() -> {queue name: depth}``, read at every collection by every handle
    (also those created later); returns the call that unregisters it."""
    return QUEUE_DEPTH_CALLBACKS.register(callback)


__all__ = [
    "BusinessMetrics",
    "GenerationStatus",
    "GenerationTracker",
    "observe_active_users",
    "observe_queue_depth",
    "record_cache_hit",
    "record_cache_miss",
    "record_payment",
    "record_registration",
    "track_generation",
]
