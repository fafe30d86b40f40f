"""Finished spans for encoder tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def with_fields(span: ReadableSpan, **changes: Any) -> ReadableSpan:
    """A copy of the finished ``span`` as a plain ``ReadableSpan``, with ``changes`` in place of its fields."""
    fields = {
        "name": span.name,
        "context": span.context,
        "parent": span.parent,
        "resource": span.resource,
        "attributes": span.attributes,
        "events": span.events,
        "links": span.links,
        "kind": span.kind,
        "status": span.status,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "instrumentation_scope": span.instrumentation_scope,
    }
    return ReadableSpan(**{**fields, **changes})
