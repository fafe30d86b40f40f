"""Fixtures for the Sentry tests: the ingest double, a collector double, and apps served by real uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from tests.support.asgi_server import serve
from tests.support.http_server import serving
from tests.support.otlp_sink import OtlpSink, http_sink_server
from tests.support.sentry_ingest import SentryIngest


@pytest.fixture
def ingest() -> Iterator[SentryIngest]:
    with SentryIngest() as double:
        yield double


@pytest.fixture
def collector() -> Iterator[tuple[OtlpSink, str]]:
    """An OTLP/HTTP receiver standing in for the collector: (what it received, its endpoint)."""
    sink = OtlpSink()
    with serving(http_sink_server(sink), name="otlp-sink") as server:
        yield sink, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def served() -> Callable[[Any], AbstractContextManager[str]]:
    """``served(app)``: real uvicorn serving ``app`` for the block, which gets its base URL.

    Leaving the block waits for uvicorn to stop, so every request span has ended before the test flushes.
    """
    return serve
