"""PagerDuty Events API v2 as a double answers it: validation and reply (the local sink and the tests' double).

PagerDuty answers ``202 {"status": "success", ...}`` to a valid event and ``400 {"status": "invalid
event", "errors": [...]}`` otherwise. Rules checked (developer.pagerduty.com, Events API v2):
``routing_key`` is a 32-character string; ``event_action`` is ``trigger`` or ``resolve`` (Alertmanager
sends nothing else); ``dedup_key`` is present (Alertmanager always sets it, and resolve needs it); a
trigger has a ``payload`` with non-empty ``summary`` (at most 1024 characters), ``source`` and a
``severity`` of ``critical``, ``error``, ``warning`` or ``info``.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

SEVERITIES = {"critical", "error", "warning", "info"}
NOT_JSON = object()
"""What ``decode`` returns for a body that is not JSON (PagerDuty rejects it like an invalid event)."""


def validate(event: Any) -> list[str]:
    """PagerDuty's objections to ``event`` (empty when it would be accepted)."""
    if not isinstance(event, dict):
        return ["event must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be a 32-character string")
    action = event.get("event_action")
    if action not in ("trigger", "resolve"):
        errors.append(f"'event_action' must be trigger or resolve, not {action!r}")
    if not isinstance(event.get("dedup_key"), str) or not event["dedup_key"]:
        errors.append("'dedup_key' is missing")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors.append("'payload.summary' is missing")
        elif len(summary) > 1024:
            errors.append("'payload.summary' is longer than 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in SEVERITIES:
            errors.append(f"'payload.severity' must be one of {sorted(SEVERITIES)}, not {payload.get('severity')!r}")
    return errors


def decode(raw: bytes) -> Any:
    """The request body as JSON, or ``NOT_JSON``."""
    try:
        return json.loads(raw)
    except ValueError:
        return NOT_JSON


def response_for(body: Any) -> tuple[int, dict[str, Any]]:
    """PagerDuty's status and JSON reply to ``body`` (from ``decode``); a 400's reply lists the errors.

    One answer for both doubles, so the stack's sink and the tests' double cannot drift apart.
    """
    errors = ["body is not JSON"] if body is NOT_JSON else validate(body)
    if errors:
        return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return 202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Write ``body`` as the JSON reply of ``handler``'s request."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
