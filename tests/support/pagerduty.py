"""A PagerDuty Events API v2 double: answers events the way PagerDuty does and keeps them.

The rules and the answer (``validate``, ``response_for``) live in otelkit/devstack/pagerduty_events.py,
shared with the local stack's sink; this module only serves them on a free port and records the events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otelkit.devstack.pagerduty_events import SEVERITIES, decode, response_for, send_json, validate

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
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v2/enqueue":
                    send_json(self, 404, {"status": "not found"})
                    return
                body = decode(raw)
                status, reply = response_for(body)
                double._add(Event(body if isinstance(body, dict) else {}, reply.get("errors", [])))
                send_json(self, status, reply)

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
