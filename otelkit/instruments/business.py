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
            meter, "active_users", "timeframe", "Active users per timeframe (e.g. 1d, 7d, 30d)."
        )
        self._queue_depth = _CallbackGauge(meter, "queue_depth", "queue", "Items waiting, per queue.")

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

    def observe_active_users(self, callback: Callable[[], Mapping[str, float]]) -> None:
        """Register ``callback() -> {timeframe: count}``, called at each collection."""
        self._active_users.register(callback)

    def observe_queue_depth(self, callback: Callable[[], Mapping[str, float]]) -> None:
        """Register ``callback() -> {queue: depth}``, called at each collection."""
        self._queue_depth.register(callback)


class GenerationTracker:
    """Context manager (sync or async) and decorator around one generation.

    The outcome is ``success`` unless the block raises: ``timeout`` for `TimeoutError`
    (asyncio's included), ``failure`` otherwise. `set_status` overrides it for failures
    reported without an exception.
    """

    __slots__ = ("_metrics", "_model_type", "_started", "_status")

    def __init__(self, metrics: BusinessMetrics, model_type: str) -> None:
        self._metrics = metrics
        self._model_type = model_type
        self._started = 0.0
        self._status: GenerationStatus | None = None

    def set_status(self, status: GenerationStatus) -> None:
        self._status = status

    def __enter__(self) -> GenerationTracker:
        self._metrics.active_generations.cell((self._model_type,)).add(1.0)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration = time.perf_counter() - self._started
        status = self._status or _status_of(exc_type)
        metrics = self._metrics
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
        metrics, model_type = self._metrics, self._model_type
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with GenerationTracker(metrics, model_type):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with GenerationTracker(metrics, model_type):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _status_of(exc_type: type[BaseException] | None) -> GenerationStatus:
    if exc_type is None:
        return "success"
    if issubclass(exc_type, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    return "failure"


class _CallbackGauge:
    """An observable gauge fed by application callbacks returning ``{label value: number}``.

    A callback that raises is logged once and skipped, so one broken callback does not
    hide the others or flood the log at every scrape.
    """

    def __init__(self, meter: Meter, name: str, label: str, description: str) -> None:
        self._name = name
        self._label = label
        self._callbacks: list[Callable[[], Mapping[str, float]]] = []
        self._failed: set[int] = set()
        meter.create_observable_gauge(name, callbacks=[self._observe], description=description)

    def register(self, callback: Callable[[], Mapping[str, float]]) -> None:
        self._callbacks.append(callback)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for callback in list(self._callbacks):
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
