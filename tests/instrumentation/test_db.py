"""SQLAlchemy against a real PostgreSQL: query spans and exact pool figures."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

import otelkit
from otelkit.testing import MetricsCapture

QUIET = {"metrics": {"system_metrics": False}}


@pytest.fixture
def engine(postgres_url: str):  # type: ignore[no-untyped-def]
    engine = sqlalchemy.create_engine(postgres_url, pool_size=3, max_overflow=2, pool_timeout=0.2)
    yield engine
    engine.dispose()


def pool_label(postgres_url: str) -> str:
    url = sqlalchemy.make_url(postgres_url)
    return f"{url.host}:{url.port}/{url.database}"


def test_pool_figures_follow_checkouts_exactly(otelkit_capture: MetricsCapture, engine, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    otelkit.init(engine=engine, **QUIET)
    pool = pool_label(postgres_url)
    held = [engine.connect() for _ in range(2)]
    for connection in held:
        connection.execute(sqlalchemy.text("SELECT 1"))
    assert otelkit_capture.value("database_connections_in_use", pool=pool) == 2
    assert otelkit_capture.value("database_connections_idle", pool=pool) == 0
    assert otelkit_capture.value("database_connections_pool_size", pool=pool) == 3
    assert otelkit_capture.value("database_connections_max", pool=pool) == 5
    held += [engine.connect() for _ in range(2)]  # the fourth is beyond pool_size
    assert otelkit_capture.value("database_connections_in_use", pool=pool) == 4
    assert otelkit_capture.value("database_connections_overflow", pool=pool) == 1
    for connection in held:
        connection.close()
    assert otelkit_capture.value("database_connections_in_use", pool=pool) == 0
    assert otelkit_capture.value("database_connections_idle", pool=pool) == 3  # the overflow one was closed


def test_checkout_timeouts_are_counted(otelkit_capture: MetricsCapture, postgres_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    handle = otelkit.init(**QUIET)
    handle.instrument_sqlalchemy(engine, name="primary")
    with engine.connect():
        for _ in range(2):
            with pytest.raises(sqlalchemy.exc.TimeoutError):
                engine.connect()
    engine.dispose()
    assert otelkit_capture.value("database_connections_checkout_timeouts_total", pool="primary") == 2


def test_queries_are_spans_inside_the_request(otelkit_capture: MetricsCapture, engine) -> None:  # type: ignore[no-untyped-def]
    app = FastAPI()

    @app.get("/count")
    def count() -> int:
        with engine.connect() as connection:
            return int(connection.execute(sqlalchemy.text("SELECT count(*) FROM pg_class")).scalar_one())

    otelkit.init(app, engine=engine, **QUIET)
    assert TestClient(app).get("/count").status_code == 200
    spans = {span["name"]: span for span in otelkit_capture.spans}
    request = spans["GET /count"]
    (query,) = [s for s in otelkit_capture.spans if s["parent_span_id"] == request["span_id"]]
    assert query["kind"] == "CLIENT"
    assert "SELECT count(*) FROM pg_class" in str(query["attributes"])
    assert query["trace_id"] == request["trace_id"]


def test_async_engines_are_instrumented(otelkit_capture: MetricsCapture, postgres_url: str) -> None:
    async_url = postgres_url.replace("+psycopg", "+asyncpg")
    engine = create_async_engine(async_url, pool_size=2, max_overflow=0)
    handle = otelkit.init(**QUIET)
    handle.instrument_sqlalchemy(engine, name="async")

    async def run() -> None:
        async with engine.connect() as connection:
            await connection.execute(sqlalchemy.text("SELECT 42"))
            assert otelkit_capture.value("database_connections_in_use", pool="async") == 1
        await engine.dispose()

    with handle.tracer.start_as_current_span("job"):
        asyncio.run(run())
    assert any("SELECT 42" in str(span["attributes"]) for span in otelkit_capture.spans)
    assert otelkit_capture.value("database_connections_max", pool="async") == 2


def test_something_that_is_not_an_engine_is_refused(otelkit_capture: MetricsCapture) -> None:
    with pytest.raises(otelkit.OtelkitConfigError, match="engine: expected a SQLAlchemy Engine"):
        otelkit.init(engine="postgresql://localhost/app", **QUIET)


def test_pool_figures_follow_the_new_pool_after_dispose(otelkit_capture: MetricsCapture, postgres_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    handle = otelkit.init(**QUIET)
    handle.instrument_sqlalchemy(engine, name="primary")
    engine.dispose()  # a new pool replaces the one instrumented
    held = engine.connect()
    assert otelkit_capture.value("database_connections_in_use", pool="primary") == 1
    with pytest.raises(sqlalchemy.exc.TimeoutError):
        engine.connect()
    assert otelkit_capture.value("database_connections_checkout_timeouts_total", pool="primary") == 1
    held.close()
    engine.dispose()
    assert otelkit_capture.value("database_connections_in_use", pool="primary") == 0


def test_an_engine_instrumented_twice_is_counted_and_traced_once(
    otelkit_capture: MetricsCapture, postgres_url: str
) -> None:
    engine = sqlalchemy.create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    handle = otelkit.init(**QUIET)
    handle.instrument_sqlalchemy(engine, name="primary")
    handle.instrument_sqlalchemy(engine, name="primary")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 7"))
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            engine.connect()
    engine.dispose()
    assert otelkit_capture.value("database_connections_checkout_timeouts_total", pool="primary") == 1
    assert len([s for s in otelkit_capture.spans if "SELECT 7" in str(s["attributes"])]) == 1


def test_two_engines_cannot_share_a_pool_name(otelkit_capture: MetricsCapture, postgres_url: str) -> None:
    handle = otelkit.init(**QUIET)
    first, second = (sqlalchemy.create_engine(postgres_url) for _ in range(2))
    handle.instrument_sqlalchemy(first)
    with pytest.raises(otelkit.OtelkitConfigError, match=r"engine name: .* already names another engine's pool"):
        handle.instrument_sqlalchemy(second)
    first.dispose()
    second.dispose()


def test_a_new_handle_counts_an_engines_timeouts_once(otelkit_capture: MetricsCapture, postgres_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    for _ in range(3):  # handles come and go over a process's life (tests, re-configuration)
        earlier = otelkit.init(**QUIET)
        earlier.instrument_sqlalchemy(engine, name="primary")
        engine.dispose()
        earlier.shutdown()
    handle = otelkit.init(**QUIET)
    handle.instrument_sqlalchemy(engine, name="primary")
    with engine.connect(), pytest.raises(sqlalchemy.exc.TimeoutError):
        engine.connect()
    engine.dispose()
    assert otelkit_capture.value("database_connections_checkout_timeouts_total", pool="primary") == 1
    assert len(list(engine.dispatch.engine_disposed)) == 1  # not one more listener per handle ever made


def test_instrumenting_an_engine_again_under_another_name_keeps_the_first(
    otelkit_capture: MetricsCapture, engine
) -> None:  # type: ignore[no-untyped-def]
    handle = otelkit.init(**QUIET)
    handle.instrument_sqlalchemy(engine, name="primary")
    handle.instrument_sqlalchemy(engine, name="replica")
    assert otelkit_capture.value("database_connections_pool_size", pool="primary") == 3
    otelkit_capture.assert_absent("database_connections_pool_size", pool="replica")
    assert sorted(asyncio.run(handle.health.run())) == ["database:primary"]
