"""The spec's business metrics, and the helpers services call to record them.

>>> with business.track_generation(model_type="sdxl"):       # doctest: +SKIP
...     image = model.generate(prompt)
>>> business.record_payment("stripe", "success", 19.99, "EUR")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otelkit._internal.bound import BoundCounter
from otelkit._internal.bound_histograms import BoundHistograms, histogram
from otelkit._internal.overflow import OverflowWarner

logger = logging.getLogger("otelkit")

GenerationStatus = Literal["success", "failure", "timeout"]
F = TypeVar("F", bound=Callable[..., Any])


class BusinessMetrics:
    """Owns the business instruments of one meter provider."""

    def __init__(
        self,
        meter: Meter,
        *,
        cardinality_limit: int,
        warner: OverflowWarner,
        bound_histograms: BoundHistograms | None = None,
        boundaries: Sequence[float] = (),
    ) -> None:
        def counter(name: str, labels: tuple[str, ...], description: str, monotonic: bool = True) -> BoundCounter:
            return BoundCounter(
                meter,
                name,
                labels,
                description=description,
                monotonic=monotonic,
                cardinality_limit=cardinality_limit,
                warner=warner,
            )

        self.generation_requests = counter(
            "generation_requests_total",
            ("status", "model_type"),
            "Generation requests by outcome and model type.",
        )
        self.active_generations = counter(
            "active_generations", ("model_type",), "Generations in progress.", monotonic=False
        )
        self.generation_duration = histogram(
            meter,
            bound_histograms,
            "generation_duration_seconds",
            ("model_type", "status"),
            unit="s",
            description="Generation processing time.",
            boundaries=boundaries,
        )
        self.payment_requests = counter(
            "payment_requests_total", ("provider", "status"), "Payment requests by provider and outcome."
        )
        self.payment_amount = counter(
            "payment_amount_total", ("provider", "currency"), "Amount of successful payments, in major units."
        )
        self.user_registrations = counter(
            "user_registrations_total", ("source",), "User registrations by acquisition source."
        )
        self._active_users = _CallbackGauge(
            meter,
            "active_users",
            "timeframe",
            "Active users per timeframe (e.g. 1d, 7d, 30d).",
            shared=ACTIVE_USERS_CALLBACKS,
        )
        self._queue_depth = _CallbackGauge(
            meter, "queue_depth", "queue", "Items waiting, per queue.", shared=QUEUE_DEPTH_CALLBACKS
        )

    def track_generation(self, model_type: str) -> GenerationTracker:
        """Track one generation: in-flight gauge, duration and outcome (from the exception, if any)."""
        return GenerationTracker(self, model_type)

    def record_payment(self, provider: str, status: str, amount: float = 0.0, currency: str = "") -> None:
        """Count a payment request; ``amount`` adds to the revenue total only when ``status`` is success."""
        self.payment_requests.cell((provider, status)).add(1.0)
        if status == "success" and amount:
            self.payment_amount.add(amount, (provider, currency))

    def record_registration(self, source: str) -> None:
        self.user_registrations.cell((source,)).add(1.0)

    def observe_active_users(self, callback: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
        """Register ``callback() -> {timeframe: count}`` for this handle only; returns the unregister call."""
        return self._active_users.own.register(callback)

    def observe_queue_depth(self, callback: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
        """Register ``callback() -> {queue: depth}`` for this handle only; returns the unregister call."""
        return self._queue_depth.own.register(callback)


class GenerationTracker:
    """Context manager (sync or async) and decorator around one generation.

    The outcome is ``success`` unless the block raises: ``timeout`` for `TimeoutError`
    (asyncio's included), ``failure`` otherwise. `set_status` overrides it for failures
    reported without an exception.

    With ``resolve`` (what the module-level helper passes), the metrics are looked up when the
    block is entered, not when the tracker is made: a decorator applied at import, before
    `otelkit.init()`, records into whichever handle is live at each call.
    """

    __slots__ = ("_metrics", "_model_type", "_resolve", "_started", "_status")

    def __init__(
        self,
        metrics: BusinessMetrics | None,
        model_type: str,
        resolve: Callable[[], BusinessMetrics] | None = None,
    ) -> None:
        self._metrics = metrics
        self._model_type = model_type
        self._resolve = resolve
        self._started = 0.0
        self._status: GenerationStatus | None = None

    def set_status(self, status: GenerationStatus) -> None:
        self._status = status

    def __enter__(self) -> GenerationTracker:
        if self._resolve is not None:
            self._metrics = self._resolve()  # __exit__ records into the same handle as __enter__
        self._metrics.active_generations.cell((self._model_type,)).add(1.0)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration = time.perf_counter() - self._started
        status = self._status or _status_of(exc_type)
        metrics: BusinessMetrics = self._metrics  # type: ignore[assignment]  # set by __enter__
        metrics.generation_requests.cell((status, self._model_type)).add(1.0)
        metrics.generation_duration.cell((self._model_type, status)).observe(duration)
        metrics.active_generations.cell((self._model_type,)).add(-1.0)

    async def __aenter__(self) -> GenerationTracker:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Decorate a function: each call is tracked by a fresh tracker."""
        metrics, model_type, resolve = self._metrics, self._model_type, self._resolve
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with GenerationTracker(metrics, model_type, resolve):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with GenerationTracker(metrics, model_type, resolve):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _status_of(exc_type: type[BaseException] | None) -> GenerationStatus:
    if exc_type is None:
        return "success"
    if issubclass(exc_type, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    return "failure"


class CallbackRegistry:
    """Callbacks ``() -> {label value: number}`` for one observable gauge.

    The module-level registries below outlive handles: `otelkit.observe_queue_depth()` called at
    import, before `otelkit.init()`, is read by every handle created later (and again after a
    shutdown and a new ``init()``). Registering the same callable twice keeps one entry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: tuple[Callable[[], Mapping[str, float]], ...] = ()

    def register(self, callback: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
        """Add ``callback``; returns the call that removes it again."""
        with self._lock:
            if not any(existing is callback for existing in self._callbacks):
                self._callbacks = (*self._callbacks, callback)
        return lambda: self.unregister(callback)

    def unregister(self, callback: Callable[[], Mapping[str, float]]) -> None:
        with self._lock:
            self._callbacks = tuple(existing for existing in self._callbacks if existing is not callback)

    def snapshot(self) -> tuple[Callable[[], Mapping[str, float]], ...]:
        return self._callbacks

    def restore(self, callbacks: tuple[Callable[[], Mapping[str, float]], ...]) -> None:
        """Put back an earlier `snapshot` (the pytest capture undoes a test's registrations)."""
        with self._lock:
            self._callbacks = callbacks


ACTIVE_USERS_CALLBACKS = CallbackRegistry()
"""What `otelkit.observe_active_users()` registered: read by every handle."""
QUEUE_DEPTH_CALLBACKS = CallbackRegistry()
"""What `otelkit.observe_queue_depth()` registered: read by every handle."""


class _CallbackGauge:
    """An observable gauge fed by application callbacks returning ``{label value: number}``:
    the process-wide ones (``shared``) and this handle's own.

    A callback that raises is logged once and skipped, so one broken callback does not
    hide the others or flood the log at every scrape.
    """

    def __init__(self, meter: Meter, name: str, label: str, description: str, *, shared: CallbackRegistry) -> None:
        self._name = name
        self._label = label
        self._shared = shared
        self.own = CallbackRegistry()
        self._failed: set[int] = set()
        meter.create_observable_gauge(name, callbacks=[self._observe], description=description)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for callback in (*self._shared.snapshot(), *self.own.snapshot()):
            try:
                values = callback()
                observations.extend(Observation(float(v), {self._label: str(k)}) for k, v in values.items())
            except Exception:
                if id(callback) not in self._failed:
                    self._failed.add(id(callback))
                    logger.exception("otelkit: %s callback %r failed; skipped until it succeeds", self._name, callback)
            else:
                self._failed.discard(id(callback))
        return observations
