"""/health and /health/detailed against real dependencies, dead ones and hung ones."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

import otelkit
from otelkit.testing import MetricsCapture
from tests.support.otlp_sink import OtlpSink, start_grpc_sink
from tests.support.ports import refused_port

QUIET = {"metrics": {"system_metrics": False}}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a hung dependency."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_liveness_needs_no_dependency(otelkit_capture: MetricsCapture) -> None:
    app = FastAPI()
    otelkit.init(app, **QUIET)
    response = TestClient(app).get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_with_healthy_postgres_and_redis(
    otelkit_capture: MetricsCapture, postgres_url: str, redis_url: str
) -> None:
    app = FastAPI()
    engine = sqlalchemy.create_engine(postgres_url)
    client = redis.Redis.from_url(redis_url)
    otelkit.init(app, engine=engine, redis=client, service={"name": "shop", "version": "2.1"}, **QUIET)
    response = TestClient(app).get("/health/detailed")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["service"] == {"name": "shop", "version": "2.1", "environment": "development"}
    url = sqlalchemy.make_url(postgres_url)
    assert set(body["checks"]) == {f"database:{url.host}:{url.port}/{url.database}", "redis:redis"}
    assert all(check["status"] == "ok" and check["latency_ms"] >= 0 for check in body["checks"].values())
    engine.dispose()


def test_readiness_with_asyncio_redis_and_an_async_engine(
    otelkit_capture: MetricsCapture, postgres_url: str, redis_url: str
) -> None:
    import redis.asyncio
    from sqlalchemy.ext.asyncio import create_async_engine

    app = FastAPI()
    engine = create_async_engine(postgres_url.replace("+psycopg", "+asyncpg"))
    client = redis.asyncio.Redis.from_url(redis_url)
    otelkit.init(app, engine=engine, redis=client, **QUIET)
    with TestClient(app) as test_client:  # one event loop for the asyncio clients
        response = test_client.get("/health/detailed")
    assert response.status_code == 200, response.json()
    assert {check["status"] for check in response.json()["checks"].values()} == {"ok"}


def test_a_dead_database_fails_readiness_without_leaking_its_password(otelkit_capture: MetricsCapture) -> None:
    app = FastAPI()
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://app:s3cret@127.0.0.1:{refused_port()}/app")
    otelkit.init(app, **QUIET).instrument_sqlalchemy(engine, name="primary")
    response = TestClient(app).get("/health/detailed")
    assert response.status_code == 503
    check = response.json()["checks"]["database:primary"]
    assert check["status"] == "fail"
    assert check["error"].startswith("OperationalError")
    assert "s3cret" not in response.text


def test_a_hung_dependency_times_out_and_is_not_started_twice(
    otelkit_capture: MetricsCapture, silent_server: int
) -> None:
    app = FastAPI()
    hung = redis.Redis(host="127.0.0.1", port=silent_server, socket_timeout=30)
    otelkit.init(app, health={"timeout_seconds": 0.3}, **QUIET).instrument_redis(hung, cache="hung")
    client = TestClient(app)
    first = client.get("/health/detailed")
    assert first.status_code == 503
    assert first.json()["checks"]["redis:hung"] == {
        "status": "timeout",
        "latency_ms": first.json()["checks"]["redis:hung"]["latency_ms"],
        "error": "no answer in 0.3 s",
    }
    second = client.get("/health/detailed").json()["checks"]["redis:hung"]
    assert (second["status"], second["error"]) == ("timeout", "the previous check has not returned yet")


def test_the_otlp_endpoint_is_checked() -> None:
    sink = OtlpSink()
    server, port = start_grpc_sink(sink)
    app = FastAPI()
    try:
        otelkit.init(app, otlp={"endpoint": f"http://127.0.0.1:{port}", "metrics": False, "traces": False}, **QUIET)
        body = TestClient(app).get("/health/detailed").json()
        assert body["checks"]["otlp"]["status"] == "ok"
    finally:
        server.stop(grace=None)
    body = TestClient(app).get("/health/detailed").json()
    assert body["checks"]["otlp"]["status"] == "fail"
    assert "ConnectionRefusedError" in body["checks"]["otlp"]["error"]


def test_an_app_that_serves_its_own_health_keeps_it(otelkit_capture: MetricsCapture) -> None:
    app = FastAPI()

    @app.get("/health")
    def mine() -> dict[str, str]:
        return {"mine": "yes"}

    otelkit.init(app, **QUIET)
    client = TestClient(app)
    assert client.get("/health").json() == {"mine": "yes"}
    assert client.get("/health/detailed").status_code == 200


def test_health_endpoints_can_be_moved_or_disabled(otelkit_capture: MetricsCapture) -> None:
    app = FastAPI()
    otelkit.init(app, health={"path": "/livez", "detailed_path": "/readyz"}, **QUIET)
    client = TestClient(app)
    assert client.get("/livez").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/health").status_code == 404
    other = FastAPI()
    otelkit.init(other)  # the live handle, second app
    assert TestClient(other).get("/livez").status_code == 200


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_hung_database_times_out(otelkit_capture: MetricsCapture, silent_server: int, flavour: str) -> None:
    url = f"postgresql+{'psycopg' if flavour == 'sync' else 'asyncpg'}://app:pw@127.0.0.1:{silent_server}/app"
    engine = sqlalchemy.create_engine(url) if flavour == "sync" else create_async_engine(url)
    app = FastAPI()
    otelkit.init(app, health={"timeout_seconds": 0.3}, **QUIET).instrument_sqlalchemy(engine, name="hung")
    client = TestClient(app)
    response = client.get("/health/detailed")
    assert response.status_code == 503
    assert (response.json()["checks"]["database:hung"]["status"], response.json()["status"]) == ("timeout", "fail")
    assert client.get("/health").status_code == 200  # liveness does not wait for the stuck check
