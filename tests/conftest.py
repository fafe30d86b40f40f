from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from otelkit._internal import state
from otelkit._internal.log_once import _seen as log_once_seen
from otelkit.testing import preserved_callbacks, reset_opentelemetry_globals
from tests.support.databases import postgres_server, redis_server
from tests.support.otlp_sink import OtlpSink, start_grpc_sink

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """``timeout`` and CI runners stop a run with SIGTERM, which skips fixture teardown and leaves the
    servers the fixtures started running; as a KeyboardInterrupt, pytest tears them down first."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test sees the developer's OTEL_*/OTELKIT_* variables, a real /run/secrets, or another test's handle."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "OTELKIT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTELKIT_SECRETS_DIR", str(tmp_path_factory.mktemp("no-secrets")))
    reset_opentelemetry_globals()  # init() sets OpenTelemetry's set-once globals; each test starts unset
    log_once_seen.clear()  # "logged once" is per process: each test sees its own first time
    with preserved_callbacks():  # otelkit.observe_*() callbacks are process-wide; a test's go with it
        yield
    handle = state.current
    if handle is not None:
        handle.shutdown(timeout_seconds=5)
    reset_opentelemetry_globals()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL, started for the session unless OTELKIT_TEST_POSTGRES_URL names one."""
    given = os.environ.get("OTELKIT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with postgres_server(tmp_path_factory.mktemp("postgres-log")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis, started for the session unless OTELKIT_TEST_REDIS_URL names one."""
    given = os.environ.get("OTELKIT_TEST_REDIS_URL")
    if given:
        yield given
        return
    with redis_server(tmp_path_factory.mktemp("redis-log")) as url:
        yield url


@pytest.fixture
def grpc_sink() -> Iterator[tuple[OtlpSink, str]]:
    """An OTLP/gRPC receiver and its endpoint URL, with gRPC's default 4 MiB limit on a request (as
    the collector's)."""
    sink = OtlpSink()
    server, port = start_grpc_sink(sink)
    yield sink, f"http://127.0.0.1:{port}"
    server.stop(grace=None)
