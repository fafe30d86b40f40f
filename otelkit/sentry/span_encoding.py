"""Spans encoded for Sentry: the collector's OTLP encoding with attributes, events and status scrubbed.

Sentry is a third party, so what it gets of a span is scrubbed (query strings, secret path
parameters, header captures, client addresses, card numbers in messages and status
descriptions); the collector gets the span as recorded. Most of a span is the same for both, so
`ScrubbedSpans` is the second encoding of `encode_export_request_twice`: each span is encoded
once, and Sentry's attributes are derived from the collector's encoded pairs through a cache
from plain pair to scrubbed pair (bytes cache their hash, so a lookup is cheap); ``url.path`` is
scrubbed by the span's route template, so its pairs are cached per route. A span with events or a
status description is rare (an error) and is encoded whole, scrubbed, a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

from otelkit._internal.otlp_spans import (
    _FIELDS_READABLE,
    _attribute_parts,
    encode_attribute,
    encode_export_request,
    encode_export_requests,
)
from otelkit.sentry.scrubbing import Scrubber

CACHE_LIMIT = 8192
"""Scrubbed pairs kept (over all routes); the cache is cleared when it is reached."""
CACHED_STRING_MAX = 256
"""Longer values are scrubbed each time, as the collector's encoder encodes them each time: a full
cache of large one-off values (a body someone put in an attribute) would be megabytes."""
_SCALARS = (str, bool, int, float)
_MISSING = object()


class _ScrubbedSpan:
    """What the encoder reads of a finished span, with events and status scrubbed."""

    __slots__ = (
        "attributes",
        "context",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    def __init__(self, span: ReadableSpan, events: Sequence[Event], status: Status):
        self.attributes, self.events, self.status = span.attributes or {}, events, status
        self.context, self.parent, self.name, self.kind = span.context, span.parent, span.name, span.kind
        self.start_time, self.end_time, self.links = span.start_time, span.end_time, span.links
        self.resource, self.instrumentation_scope = span.resource, span.instrumentation_scope
        self.dropped_attributes, self.dropped_events = span.dropped_attributes, span.dropped_events
        self.dropped_links = span.dropped_links


def _route(attributes: Mapping[str, Any]) -> str | None:
    route = attributes.get("http.route")
    return route if isinstance(route, str) else None  # a str subclass (a StrEnum) is a route too


def _cacheable(value: Any) -> bool:
    return value.__class__ in _SCALARS and not (value.__class__ is str and len(value) > CACHED_STRING_MAX)


class ScrubbedSpans:
    """Sentry's encoding of spans (see the module docstring); one per Sentry exporter, used by
    one export thread at a time.

    Scrubbed pairs are cached by their plain encoding, one cache for all routes, except
    ``url.path``, which is cached per route (its plain bytes say the path, not the route).
    """

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._pairs: dict[bytes, bytes] = {}
        self._paths: dict[str | None, dict[bytes, bytes]] = {}
        self._event_pairs: dict[tuple[str, type, Any], Any] = {}
        self._size = 0

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """Sentry's request alone (when no collector takes the spans)."""
        return encode_export_request(self._prepared(spans), self._attributes_of)

    def encode_requests(
        self, spans: Sequence[ReadableSpan], max_bytes: int
    ) -> tuple[list[tuple[list[ReadableSpan], bytes]], list[ReadableSpan]]:
        """Sentry's requests of at most ``max_bytes`` each, and the spans too large alone, as
        `encode_export_requests` splits the collector's (the spans returned are Sentry's copies)."""
        return encode_export_requests(self._prepared(spans), max_bytes, self._attributes_of)

    def _prepared(self, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        return [self.replacement(span) or span for span in spans]

    def replacement(self, span: ReadableSpan) -> ReadableSpan | None:
        """``span`` with its events and status description scrubbed, or None when it has neither."""
        if span.__class__ in _FIELDS_READABLE:
            events, status = span._events, span._status
        else:
            events, status = span.events, span.status
        if not events and not status.description:
            return None
        scrubbed_events = [
            Event(event.name, self._event_attributes(event.attributes or {}), event.timestamp) for event in events
        ]
        if status.description:
            status = Status(status.status_code, self._scrubber.scrub_text(status.description))
        return cast(ReadableSpan, _ScrubbedSpan(span, scrubbed_events, status))

    def attributes(self, parts: list[bytes], attributes: Mapping[str, Any]) -> bytes:
        """The scrubbed attributes field from the plain encoded ``parts`` (one per attribute, in order)."""
        found = list(map(self._pairs.get, parts))
        if None not in found:
            return b"".join(found)  # type: ignore[arg-type]
        route = _route(attributes)
        paths = self._paths.get(route)
        if paths is not None:  # the usual miss: ``url.path``, cached under its route
            at = found.index(None)
            found[at] = paths.get(parts[at])  # only url.path pairs are in there: their bytes hold the key
            if None not in found:
                return b"".join(found)  # type: ignore[arg-type]
        return b"".join(
            self._scrubbed_pair(part, key, value, route)
            for part, (key, value) in zip(parts, attributes.items(), strict=True)
        )

    def _attributes_of(self, attributes: Mapping[str, Any]) -> bytes:
        return self.attributes(_attribute_parts(9, attributes), attributes)

    def _scrubbed_pair(self, part: bytes, key: str, value: Any, route: str | None) -> bytes:
        by_route = key == "url.path"
        cache = self._paths.get(route) if by_route else self._pairs
        found = cache.get(part) if cache is not None else None
        if found is not None:
            return found
        encoded = encode_attribute(9, key, self._scrubber.scrub_attribute(key, value, route))
        if part and _cacheable(value):  # b"": a pair the wire cannot carry; such pairs share that key
            if self._size >= CACHE_LIMIT:  # one bound over all routes: everything goes
                self._pairs.clear()
                self._paths.clear()
                self._size = 0
            (self._paths.setdefault(route, {}) if by_route else self._pairs)[part] = encoded
            self._size += 1
        return encoded

    def _event_attributes(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """``attributes`` itself when nothing changes, else a scrubbed copy; each distinct scalar pair
        is scrubbed once (bounded cache)."""
        scrubbed: dict[str, Any] = {}
        changed = False
        cache = self._event_pairs
        for key, value in attributes.items():
            result = _cached(
                cache,
                (key, value.__class__, value) if _cacheable(value) else None,
                self._scrubber.scrub_attribute,
                key,
                value,
            )
            changed = changed or result != value
            scrubbed[key] = result
        return scrubbed if changed else attributes


def _cached(cache: dict[Any, Any], key: Any, compute: Callable[..., Any], *args: Any) -> Any:
    """``compute(*args)`` once per key in a bounded cache (cleared when full); every time for a None key."""
    if key is None:
        return compute(*args)
    found = cache.get(key, _MISSING)
    if found is _MISSING:
        found = compute(*args)
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[key] = found
    return found


__all__ = ["CACHE_LIMIT", "ScrubbedSpans"]
