"""A PagerDuty Events API v2 double: validates events the way PagerDuty does and keeps them.

The validation lives in otelkit/devstack/pagerduty_events.py (the local stack's sink uses it too).
PagerDuty answers ``202 {"status": "success", ...}`` to a valid event and ``400 {"status": "invalid
event", "errors": [...]}`` otherwise. Rules checked (developer.pagerduty.com, Events API v2):
``routing_key`` is a 32-character string; ``event_action`` is ``trigger`` or ``resolve`` (Alertmanager
sends nothing else); ``dedup_key`` is present (Alertmanager always sets it, and resolve needs it); a
trigger has a ``payload`` with non-empty ``summary`` (at most 1024 characters), ``source`` and a
``severity`` of ``critical``, ``error``, ``warning`` or ``info``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otelkit.devstack.pagerduty_events import SEVERITIES, validate

__all__ = ["SEVERITIES", "Event", "PagerDutyDouble", "validate"]


@dataclass(frozen=True)
class Event:
    body: dict[str, Any]
    errors: list[str]

    @property
    def action(self) -> str:
        return str(self.body.get("event_action"))

    @property
    def dedup_key(self) -> str:
        return str(self.body.get("dedup_key"))

    @property
    def summary(self) -> str:
        return str(self.body.get("payload", {}).get("summary", ""))


class PagerDutyDouble:
    """``url`` is what Alertmanager's ``pagerduty_configs[].url`` takes."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/v2/enqueue":
                    self._reply(404, {"status": "not found"})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body, errors = {}, ["body is not JSON"]
                else:
                    errors = validate(body)
                double._add(Event(body if isinstance(body, dict) else {}, errors))
                if errors:
                    self._reply(
                        400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
                    )
                    return
                self._reply(202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v2/enqueue"
        self._thread = threading.Thread(target=self._server.serve_forever, name="pagerduty-double", daemon=True)

    def __enter__(self) -> PagerDutyDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _add(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def accepted(self) -> list[Event]:
        with self._changed:
            return [event for event in self.events if not event.errors]

    def rejected(self) -> list[Event]:
        with self._changed:
            return [event for event in self.events if event.errors]

    def wait_for(self, predicate: Any, timeout: float) -> list[Event]:
        """The accepted events for which ``predicate(event)`` holds, once there is at least one."""
        with self._changed:
            self._changed.wait_for(lambda: any(predicate(e) for e in self.events if not e.errors), timeout)
            return [e for e in self.events if not e.errors and predicate(e)]
