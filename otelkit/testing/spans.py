"""Finished spans as plain, comparable dicts."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}" if context else None,
        "span_id": f"{context.span_id:016x}" if context else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "events": [{"name": event.name, "attributes": dict(event.attributes or {})} for event in span.events],
        "start_time": span.start_time,
        "end_time": span.end_time,
    }
