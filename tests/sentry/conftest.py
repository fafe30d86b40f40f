"""Fixtures for the Sentry tests: the ingest double, a collector double, and apps served by real uvicorn."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from tests.support.otlp_sink import OtlpSink, start_http_sink
from tests.support.ports import free_port
from tests.support.sentry_ingest import SentryIngest


@pytest.fixture
def ingest() -> Iterator[SentryIngest]:
    with SentryIngest() as double:
        yield double


@pytest.fixture
def collector() -> Iterator[tuple[OtlpSink, str]]:
    """An OTLP/HTTP receiver standing in for the collector: (what it received, its endpoint)."""
    sink = OtlpSink()
    server = start_http_sink(sink)
    yield sink, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port (in a thread); yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        started = threading.Event()

        def wait_started() -> bool:
            return server.started or not thread.is_alive()

        while not wait_started():
            started.wait(0.02)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served() -> Callable[[Any], Any]:
    return serve
