"""PagerDuty Events API v2 validation: what PagerDuty would reject (used by the local sink and the tests).

PagerDuty answers ``202 {"status": "success", ...}`` to a valid event and ``400 {"status": "invalid
event", "errors": [...]}`` otherwise. Rules checked (developer.pagerduty.com, Events API v2):
``routing_key`` is a 32-character string; ``event_action`` is ``trigger`` or ``resolve`` (Alertmanager
sends nothing else); ``dedup_key`` is present (Alertmanager always sets it, and resolve needs it); a
trigger has a ``payload`` with non-empty ``summary`` (at most 1024 characters), ``source`` and a
``severity`` of ``critical``, ``error``, ``warning`` or ``info``.
"""

from __future__ import annotations

from typing import Any

SEVERITIES = {"critical", "error", "warning", "info"}


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
