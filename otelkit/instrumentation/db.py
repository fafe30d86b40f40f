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

    def add_engine(self, name: str, engine: Any) -> bool:
        """Report ``engine``'s pool as ``name``; False when this engine is already reported
        (instrumenting twice would double its spans and timeouts)."""
        with self._lock:
            if any(known is engine for known in self._engines.values()):
                return False
            if name in self._engines:
                raise OtelkitConfigError(
                    f"engine name: {name!r} already names another engine's pool; "
                    "give each engine its own name (handle.instrument_sqlalchemy(engine, name=...))"
                )
            self._engines[name] = engine
        from sqlalchemy import event

        timeouts = self.checkout_timeouts.cell((name,))
        _count_checkout_timeouts(engine.pool, timeouts)
        # dispose() swaps in a new pool (forked workers and test set-ups call it routinely).
        event.listen(engine, "engine_disposed", lambda disposed: _count_checkout_timeouts(disposed.pool, timeouts))
        return True


def _count_checkout_timeouts(pool: Any, timeouts: Any) -> None:
    from sqlalchemy.exc import TimeoutError as CheckoutTimeout

    original_connect = pool.connect

    def connect() -> Any:
        try:
            return original_connect()
        except CheckoutTimeout:
            timeouts.add(1.0)
            raise

    pool.connect = connect  # this pool object only; the class and other engines are untouched


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
    if not metrics.add_engine(label, sync_engine):
        return label
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
