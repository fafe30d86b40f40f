"""SQLAlchemy: query spans (opentelemetry-instrumentation-sqlalchemy) and ``database_connections_*``.

Pool figures are read from the engine's current pool at each collection, so they cost nothing
per query and follow ``engine.dispose()`` (which replaces the pool); only checkout timeouts are
counted as they happen, by wrapping each pool's ``connect``, the new one after a dispose too.

| metric | type | meaning |
|---|---|---|
| ``database_connections_in_use{pool}`` | gauge | connections checked out by the application |
| ``database_connections_idle{pool}`` | gauge | open connections waiting in the pool |
| ``database_connections_pool_size{pool}`` | gauge | configured ``pool_size`` |
| ``database_connections_max{pool}`` | gauge | ``pool_size + max_overflow`` (absent when unlimited) |
| ``database_connections_overflow{pool}`` | gauge | connections open beyond ``pool_size`` |
| ``database_connections_checkout_timeouts_total{pool}`` | counter | checkouts that gave up after ``pool_timeout`` |
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeterProvider, Observation
from opentelemetry.trace import TracerProvider

from otelkit._internal.bound import BoundCounter
from otelkit._internal.overflow import OverflowWarner
from otelkit.errors import OtelkitConfigError


def pool_name(engine: Any) -> str:
    """``host:port/database`` of the engine: identifies the pool without its credentials."""
    url = engine.url
    host = f"{url.host}:{url.port}" if url.port else (url.host or "local")
    return f"{host}/{url.database}" if url.database else host


class DatabaseMetrics:
    """The pool gauges of every instrumented engine under one handle."""

    def __init__(self, meter: Meter, *, cardinality_limit: int, warner: OverflowWarner) -> None:
        self._engines: dict[str, Any] = {}
        """``pool`` label to the sync engine: its ``pool`` attribute is read at each collection."""
        self._lock = threading.Lock()
        self.checkout_timeouts = BoundCounter(
            meter,
            "database_connections_checkout_timeouts_total",
            ("pool",),
            description="Connection checkouts that timed out waiting for the pool.",
            cardinality_limit=cardinality_limit,
            warner=warner,
        )
        readings: list[tuple[str, str, Callable[[Any], int | None]]] = [
            ("database_connections_in_use", "Connections checked out.", lambda pool: pool.checkedout()),
            ("database_connections_idle", "Open connections idle in the pool.", lambda pool: pool.checkedin()),
            ("database_connections_pool_size", "Configured pool size.", lambda pool: pool.size()),
            ("database_connections_max", "Most connections the pool will open.", _max_connections),
            (
                "database_connections_overflow",
                "Connections beyond the pool size.",
                lambda pool: max(0, pool.overflow()),
            ),
        ]
        for name, description, read in readings:
            meter.create_observable_gauge(name, [self._observer(read)], unit="{connection}", description=description)

    def _observer(self, read: Callable[[Any], int | None]) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                pools = [(name, engine.pool) for name, engine in self._engines.items()]
            observations = []
            for name, pool in pools:
                value = read(pool) if hasattr(pool, "checkedout") else None
                if value is not None:
                    observations.append(Observation(value, {"pool": name}))
            return observations

        return observe

    def add_engine(self, name: str, engine: Any) -> str | None:
        """Report ``engine``'s pool as ``name``; when this engine is already reported, the name it
        is reported under, and nothing changes (instrumenting twice would double its spans)."""
        with self._lock:
            for known_name, known in self._engines.items():
                if known is engine:
                    return known_name
            if name in self._engines:
                raise OtelkitConfigError(
                    f"engine name: {name!r} already names another engine's pool; "
                    "give each engine its own name (handle.instrument_sqlalchemy(engine, name=...))"
                )
            self._engines[name] = engine
        _count_checkout_timeouts(engine, self.checkout_timeouts.cell((name,)))
        return None


_timeouts_of: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
"""Engine to the checkout-timeout counter of the handle reporting it now: one listener and one
wrapper per engine and pool for the process, whatever the number of handles over its life."""


def _count_checkout_timeouts(engine: Any, timeouts: Any) -> None:
    first = engine not in _timeouts_of
    _timeouts_of[engine] = timeouts
    if first:
        from sqlalchemy import event

        _wrap_pool(engine)
        # dispose() swaps in a new pool (forked workers and test set-ups call it routinely).
        event.listen(engine, "engine_disposed", _wrap_pool)


def _wrap_pool(engine: Any) -> None:
    from sqlalchemy.exc import TimeoutError as CheckoutTimeout

    pool = engine.pool
    if getattr(pool, "_otelkit_counts_timeouts", False):
        return
    original_connect = pool.connect
    engine_ref = weakref.ref(engine)

    def connect() -> Any:
        try:
            return original_connect()
        except CheckoutTimeout:
            live = engine_ref()
            timeouts = _timeouts_of.get(live) if live is not None else None
            if timeouts is not None:
                timeouts.add(1.0)
            raise

    pool.connect = connect  # this pool object only; the class and other engines are untouched
    pool._otelkit_counts_timeouts = True


def _max_connections(pool: Any) -> int | None:
    size, max_overflow = pool.size(), getattr(pool, "_max_overflow", None)
    if max_overflow is None or max_overflow < 0:
        return None  # no upper bound: "near exhaustion" has no meaning
    return size + max_overflow


def instrument_sqlalchemy(
    engine: Any, metrics: DatabaseMetrics, tracer_provider: TracerProvider | None, name: str | None = None
) -> str:
    """Trace ``engine``'s queries and report its pool; returns the ``pool`` label used."""
    sync_engine = getattr(engine, "sync_engine", engine)  # AsyncEngine wraps a sync one
    if not hasattr(sync_engine, "pool") or not hasattr(sync_engine, "url"):
        raise OtelkitConfigError(f"engine: expected a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}")
    label = name or pool_name(sync_engine)
    reported_as = metrics.add_engine(label, sync_engine)
    if reported_as is not None:
        return reported_as
    if tracer_provider is not None:
        try:
            # The per-engine tracer: SQLAlchemyInstrumentor().instrument() would also patch
            # create_engine and Engine.connect process-wide.
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        except ImportError as exc:
            raise OtelkitConfigError("tracing SQLAlchemy needs pip install 'otelkit[sqlalchemy]'") from exc
        usage = NoOpMeterProvider().get_meter("otelkit").create_up_down_counter("unused")
        EngineTracer(tracer_provider.get_tracer("otelkit.sqlalchemy"), sync_engine, usage)
    return label
