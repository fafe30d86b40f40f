"""An HTTP endpoint that records the JSON bodies POSTed to it (Alertmanager's webhook receiver)."""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http_server import serving


class WebhookSink:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with sink._changed:
                    sink.bodies.append(body)
                    sink._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ping"
        self._running = ExitStack()

    def __enter__(self) -> WebhookSink:
        self._running.enter_context(serving(self._server, name="webhook-sink"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.close()

    def wait_for_count(self, count: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: len(self.bodies) >= count, timeout)
            return len(self.bodies)
