"""Run a standard-library HTTP server (the doubles' and sinks') in a thread for the length of a block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import TypeVar

Server = TypeVar("Server", bound=ThreadingHTTPServer)


@contextmanager
def serving(server: Server, *, name: str = "http-server", poll_interval: float = 0.05) -> Iterator[Server]:
    """Serve ``server`` in a daemon thread for the block, then shut it down, close its socket and join it.

    Shutting down waits for the serve loop (a short ``poll_interval`` keeps that quick); closing waits
    for request threads unless the server has ``daemon_threads`` set (a double that holds requests does).
    """
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,), name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
