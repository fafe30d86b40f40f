"""Serve an ASGI app with real uvicorn in a thread on a free loopback port.

Tests that need real HTTP (a client of its own, ``traceparent`` over the wire, requests that
outlive the client) serve the app here rather than through an in-process test client.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve(app: Any, *, name: str = "uvicorn", timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 for the block; yield its base URL (``http://127.0.0.1:PORT``).

    The socket is bound before uvicorn starts, so no other process can take the port in between.
    On exit uvicorn stops accepting and the block ends only once it has stopped: requests still in
    flight (one a check gave up on, say) have finished and their spans and metrics are recorded.
    Raises if uvicorn does not start, or does not stop, within ``timeout`` seconds.
    The app's lifespan is off: the tests set the app up (``otelkit.init``) before serving it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start serving {url}")
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
    if thread.is_alive():  # reached only when the block itself did not raise
        raise RuntimeError(f"uvicorn at {url} did not stop within {timeout} s (a request still running?)")
