"""OTLP span encoding straight to protobuf wire bytes.

Why: the SDK's encoder builds a protobuf object per span, attribute and value (about 35 us a
span here), and it runs in the export thread of the very process serving requests, so at 100 %
tracing it costs a quarter of a small service's throughput. Spans of one service repeat the
same attribute pairs (``http.request.method=GET``, ``http.route=...``), so this encoder writes
the wire format by hand and caches each encoded pair. Tests hold it to the official messages:
the bytes must parse to exactly what ``encode_spans`` builds.

Wire reference: opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from otelkit._internal.lean_spans import _UNSET, LeanSpan
from otelkit._internal.log_once import log_once

_CACHE_LIMIT = 4096
_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack
_SMALL_VARINTS = [bytes([n]) for n in range(128)]

# SpanKind in the proto is the SDK's enum value + 1 (0 is UNSPECIFIED).
_KIND = {kind: kind.value + 1 for kind in SpanKind}
_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if 0 < value < 16384:  # two bytes: a span's length, a string's
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 0:
        value += 1 << 64  # int64 on the wire: two's complement in ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string_field(number: int, value: str) -> bytes:
    return _len_field(number, value.encode("utf-8")) if value else b""


class _Unencodable(ValueError):
    """An attribute the OTLP wire format cannot carry (an integer outside int64): the SDK's encoder
    leaves such an attribute out and logs it, and so does this one."""


_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63


def _any_value(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return _len_field(1, value.encode("utf-8"))
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        if not _INT64_MIN <= value < _INT64_END:  # not `in range(...)`: for an int subclass (IntEnum) that scans
            raise _Unencodable(f"integer out of int64 range: {value}")
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return _len_field(7, value)
    if isinstance(value, Sequence):
        return _len_field(5, b"".join(_len_field(1, _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _len_field(6, b"".join(_len_field(1, _key_value(str(k), v)) for k, v in value.items()))
    return _len_field(1, str(value).encode("utf-8"))


def _key_value(key: str, value: Any) -> bytes:
    return _len_field(1, key.encode("utf-8")) + _len_field(2, _any_value(value))


_pairs: dict[int, dict[tuple[str, Any, type], bytes]] = {1: {}, 3: {}, 4: {}, 9: {}}
"""Per field number: (key, value, type of value) -> encoded KeyValue. The type is in the key
because True, 1 and 1.0 are equal as dict keys but not on the wire."""
_CACHED_STRING_MAX = 256
"""Longer string values are encoded each time: a cache of 4096 large one-off values would be
megabytes (a request body someone put in an attribute)."""


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    return b"".join(_attribute_parts(number, attributes)) if attributes else b""


def _attribute_parts(number: int, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """Repeated KeyValue field, one encoded pair per attribute, in order; each scalar pair is
    encoded once and then served from a cache.

    The common case, every pair already cached, runs no Python code per attribute: the keys,
    values and types are zipped and looked up by ``map`` in C.
    """
    if not attributes:
        return []
    cache = _pairs.get(number)
    if cache is not None:
        values = attributes.values()
        try:
            parts = list(map(cache.get, zip(attributes.keys(), values, map(type, values), strict=True)))
        except TypeError:  # an unhashable value (a list): the pair by pair path
            parts = [None]
        if None not in parts:
            return parts  # type: ignore[return-value]
    return [_pair(number, cache, key, value) for key, value in attributes.items()]


def _pair(number: int, cache: dict[tuple[str, Any, type], bytes] | None, key: str, value: Any) -> bytes:
    encoded = encode_attribute(number, key, value)
    cacheable = isinstance(value, str | bool | int | float) and not (
        isinstance(value, str) and len(value) > _CACHED_STRING_MAX
    )
    if cache is not None and cacheable:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[(key, value, type(value))] = encoded
    return encoded


def _dropped(number: int, count: int) -> bytes:
    return _varint(number << 3) + _varint(count) if count else b""


_TIMES = struct.Struct("<cQcQ").pack  # start (field 7) and end (field 8), fixed64 each
_NO_STATUS = b"\x7a\x00"  # field 15, empty: the SDK's encoder always sends a status
_LOCAL_PARENT_FLAGS = b"\x85\x01" + _fixed32(0x100)
_REMOTE_PARENT_FLAGS = b"\x85\x01" + _fixed32(0x300)
_name_and_kind: dict[tuple[str, int], bytes] = {}


_KIND_BY_ID = {id(kind): number for kind, number in _KIND.items()}
"""By identity: hashing an Enum member runs Python code, ``id`` runs none."""


SpanAttributesEncoder = Callable[[Mapping[str, Any]], bytes]
"""Encodes a span's attributes (repeated field 9) in place of the plain encoding: the Sentry bridge
scrubs them there, pair by cached pair, instead of copying every span first."""


class SecondEncoding(Protocol):
    """What `encode_export_request_twice` needs to encode a batch for a second destination that
    sees the spans changed (Sentry: scrubbed)."""

    def replacement(self, span: ReadableSpan) -> ReadableSpan | None:
        """A span to encode whole in place of ``span`` (its events or status change), or None
        when only attributes may change."""

    def attributes(self, parts: list[bytes], attributes: Mapping[str, Any]) -> bytes:
        """The second destination's attributes field, from the first one's encoded pairs
        (one per item of ``attributes``, in order)."""


def encode_attribute(number: int, key: str, value: Any) -> bytes:
    """One KeyValue in the repeated field ``number`` (9: span attributes); nothing for an attribute the
    wire format cannot carry (logged once), so one bad value never costs the batch."""
    try:
        return _len_field(number, _key_value(key, value))
    except _Unencodable as unencodable:
        log_once(f"otlp-attribute:{key}", "otelkit: attribute %r left out of the exported span: %s", key, unencodable)
        return b""


_FIELDS_READABLE = frozenset({ReadableSpan, LeanSpan})
"""Span classes whose fields are the SDK's ``ReadableSpan`` fields with its plain properties
(the SDK's finished span, otelkit's lean span): read directly, a dozen property calls and
copies (``MappingProxyType``, ``tuple(events)``) fewer a span. Any other class (a processor's
wrapper may override a property) is read through its properties."""


_ATTRIBUTES_PART = 3
"""Where `_span_parts` puts the attributes field."""


def encode_span(span: ReadableSpan, attributes_encoder: SpanAttributesEncoder | None = None) -> bytes:
    """One ``Span`` message; the order of fields on the wire does not matter to a parser."""
    if attributes_encoder is None:
        return b"".join(_span_parts(span)[0])
    parts, attributes = _span_parts(span, encode_attributes=False)
    parts[_ATTRIBUTES_PART] = attributes_encoder(attributes)
    return b"".join(parts)


def _span_parts(span: ReadableSpan, encode_attributes: bool = True) -> tuple[list[bytes], Mapping[str, Any]]:
    """The fields of one ``Span`` message, the attributes at `_ATTRIBUTES_PART` (empty unless
    ``encode_attributes``), and the attributes themselves."""
    if span.__class__ in _FIELDS_READABLE:
        context, kind_member, name, parent = span._context, span._kind, span._name, span._parent
        start, end, attributes, status = span._start_time, span._end_time, span._attributes or {}, span._status
        events, links = span._events, span._links
        # BoundedAttributes and BoundedList count drops; a lean span's plain dict and tuples drop nothing
        # (tested by class first: getattr with a default raises and catches inside for each of those).
        dropped_attributes = 0 if attributes.__class__ is dict else getattr(attributes, "dropped", 0)
        dropped_events = 0 if events.__class__ is tuple else getattr(events, "dropped", 0)
        dropped_links = 0 if links.__class__ is tuple else getattr(links, "dropped", 0)
    else:
        context, kind_member, name, parent = span.context, span.kind, span.name, span.parent
        start, end, attributes, status = span.start_time, span.end_time, span.attributes or {}, span.status
        events, links = span.events, span.links
        dropped_attributes, dropped_events, dropped_links = (
            span.dropped_attributes,
            span.dropped_events,
            span.dropped_links,
        )
    kind = _KIND_BY_ID.get(id(kind_member)) or _KIND[kind_member]
    head = _name_and_kind.get((name, kind))
    if head is None:
        head = _string_field(5, name) + b"\x30" + _varint(kind)
        if len(_name_and_kind) >= _CACHE_LIMIT:
            _name_and_kind.clear()
        _name_and_kind[(name, kind)] = head
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        head,
        _TIMES(b"\x39", start or 0, b"\x41", end or 0),
        _attributes(9, attributes) if encode_attributes else b"",
    ]
    trace_state = context.trace_state
    if trace_state is not DEFAULT_TRACE_STATE and trace_state:  # the shared empty one: no len() call
        parts.append(_string_field(3, trace_state.to_header()))
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        parts.append(_REMOTE_PARENT_FLAGS if parent.is_remote else _LOCAL_PARENT_FLAGS)
    else:
        parts.append(_LOCAL_PARENT_FLAGS)
    if dropped_attributes:
        parts.append(_dropped(10, dropped_attributes))
    for event in events:
        event_bytes = (
            b"\x09"
            + _fixed64(event.timestamp)
            + _string_field(2, event.name)
            + _attributes(3, event.attributes)
            + _dropped(4, getattr(event, "dropped_attributes", 0))
        )
        parts.append(_len_field(11, event_bytes))
    if dropped_events:
        parts.append(_dropped(12, dropped_events))
    for link in links:
        link_context = link.context
        link_bytes = (
            b"\x0a\x10"
            + link_context.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + link_context.span_id.to_bytes(8, "big")
            + _attributes(4, link.attributes)
            + _dropped(5, link.dropped_attributes)
            + b"\x35"
            + _fixed32(_flags(link_context.is_remote))
        )
        parts.append(_len_field(13, link_bytes))
    if dropped_links:
        parts.append(_dropped(14, dropped_links))
    if status is _UNSET or (status.status_code is StatusCode.UNSET and not status.description):
        parts.append(_NO_STATUS)
    else:
        code = _STATUS[status.status_code]
        parts.append(
            _len_field(15, _string_field(2, status.description or "") + (b"\x18" + _varint(code) if code else b""))
        )
    return parts, attributes


def _flags(remote: bool) -> int:
    """SpanFlags as the SDK's encoder sets them: "has is_remote" (0x100) and "is_remote" (0x200)."""
    return 0x100 | (0x200 if remote else 0)


def encode_export_request(
    spans: Sequence[ReadableSpan], attributes_encoder: SpanAttributesEncoder | None = None
) -> bytes:
    """An ``ExportTraceServiceRequest``: spans grouped by resource, then by instrumentation scope."""
    return _request(_grouped(spans), [encode_span(span, attributes_encoder) for span in spans])


_GROUP_FRAMING = 6
"""A ResourceSpans or ScopeSpans field's tag and length prefix, at most: 1 + a varint below 2**35."""


def encode_export_requests(
    spans: Sequence[ReadableSpan], max_bytes: int, attributes_encoder: SpanAttributesEncoder | None = None
) -> tuple[list[tuple[list[ReadableSpan], bytes]], list[ReadableSpan]]:
    """``spans`` as consecutive export requests of at most ``max_bytes`` each, and the spans too
    large for any request on their own.

    Why: a receiver refuses a message over its limit whole (gRPC servers, the collector's
    included, take 4 MiB by default), so one batch of spans carrying stack traces or SQL would
    lose every span in it, after retries that hold up the export thread. A part is filled while
    its size, counted from above (each resource and scope it holds at most once), stays within
    the limit. ``attributes_encoder`` as for `encode_export_request`.
    """
    encoded = [encode_span(span, attributes_encoder) for span in spans]
    headers: dict[int, int] = {}  # id of a resource or scope -> what its fields add to a request

    def header_size(owner: Any, fields: Callable[[Any], tuple[bytes, bytes]]) -> int:
        size = headers.get(id(owner))
        if size is None:
            head, tail = fields(owner)
            size = headers[id(owner)] = _GROUP_FRAMING + len(head) + len(tail)
        return size

    requests: list[tuple[list[ReadableSpan], bytes]] = []
    oversized: list[ReadableSpan] = []
    part: list[int] = []
    groups: set[tuple[int, int]] = set()  # (resource, scope) ids in the part
    resources: set[int] = set()
    size = 0

    def close_part() -> None:
        chunk = [spans[at] for at in part]
        requests.append((chunk, _request(_grouped(chunk), [encoded[at] for at in part])))

    for position, span in enumerate(spans):
        resource, scope = _resource_and_scope(span)
        resource_size = header_size(resource, _resource_fields)
        scope_size = header_size(scope, _scope_fields)
        span_size = 1 + len(_varint(len(encoded[position]))) + len(encoded[position])
        if resource_size + scope_size + span_size > max_bytes:
            oversized.append(span)
            continue
        group = (id(resource), id(scope))
        added = span_size
        if group not in groups:
            added += scope_size + (0 if id(resource) in resources else resource_size)
        if size + added > max_bytes:
            close_part()
            part, groups, resources = [], set(), set()
            added, size = resource_size + scope_size + span_size, 0
        part.append(position)
        groups.add(group)
        resources.add(id(resource))
        size += added
    if part:
        close_part()
    return requests, oversized


def encode_export_request_twice(spans: Sequence[ReadableSpan], second: SecondEncoding) -> tuple[bytes, bytes]:
    """The request `encode_export_request` makes, and the one for a second destination, in one pass:
    every field but the changed attributes is encoded once, and the second attributes are
    derived from the first ones' encoded pairs."""

    def second_attributes(attributes: Mapping[str, Any]) -> bytes:
        return second.attributes(_attribute_parts(9, attributes), attributes)

    first, other = [], []
    for span in spans:
        replacement = second.replacement(span)
        if replacement is not None:  # events or status change too: encoded whole, twice (errors: rare)
            first.append(encode_span(span))
            other.append(encode_span(replacement, second_attributes))
            continue
        parts, attributes = _span_parts(span, encode_attributes=False)
        pairs = _attribute_parts(9, attributes)
        parts[_ATTRIBUTES_PART] = b"".join(pairs)
        first.append(b"".join(parts))
        parts[_ATTRIBUTES_PART] = second.attributes(pairs, attributes)
        other.append(b"".join(parts))
    groups = _grouped(spans)
    return _request(groups, first), _request(groups, other)


_Groups = list[tuple[Any, list[tuple[Any, list[int]]]]]


def _grouped(spans: Sequence[ReadableSpan]) -> _Groups:
    """Positions of ``spans`` by resource, then by instrumentation scope, in first-seen order."""
    # Grouped by identity: a process's spans share one Resource object, and hashing a Resource
    # serialises its attributes to JSON (the SDK's encoder pays that for every span).
    # Scopes are grouped by equality (one scope may come as equal objects), looked up by identity
    # first: hashing an InstrumentationScope runs Python code.
    by_resource: dict[int, tuple[Any, dict[Any, list[int]], dict[int, list[int]]]] = {}
    for position, span in enumerate(spans):
        resource, scope = _resource_and_scope(span)
        entry = by_resource.get(id(resource))
        if entry is None:
            entry = by_resource[id(resource)] = (resource, {}, {})
        positions = entry[2].get(id(scope))
        if positions is None:
            positions = entry[2][id(scope)] = entry[1].setdefault(scope or None, [])
        positions.append(position)
    return [(resource, list(scopes.items())) for resource, scopes, _ in by_resource.values()]


def _request(groups: _Groups, encoded: list[bytes]) -> bytes:
    request = []
    for resource, scopes in groups:
        resource_head, resource_tail = _resource_fields(resource)
        body = [resource_head]
        for scope, positions in scopes:
            scope_head, scope_tail = _scope_fields(scope)
            spans = b"".join([b"\x12" + _varint(len(encoded[at])) + encoded[at] for at in positions])
            body.append(_len_field(2, scope_head + spans + scope_tail))
        body.append(resource_tail)
        request.append(_len_field(1, b"".join(body)))
    return b"".join(request)


def _resource_fields(resource: Any) -> tuple[bytes, bytes]:
    """A ResourceSpans' fields before its ScopeSpans (the resource) and after them (its schema URL)."""
    if resource is None:
        return _len_field(1, b""), b""
    return _len_field(1, _attributes(1, resource.attributes)), _string_field(3, resource.schema_url or "")


def _scope_fields(scope: Any) -> tuple[bytes, bytes]:
    """A ScopeSpans' fields before its spans (the scope) and after them (its schema URL)."""
    if scope is None:
        return _len_field(1, b""), b""
    scope_bytes = (
        _string_field(1, scope.name)
        + _string_field(2, scope.version or "")
        + _attributes(3, getattr(scope, "attributes", None))
    )
    return _len_field(1, scope_bytes), _string_field(3, scope.schema_url or "")


def _resource_and_scope(span: ReadableSpan) -> tuple[Any, Any]:
    if span.__class__ in _FIELDS_READABLE:
        return span._resource, span._instrumentation_scope
    return span.resource, span.instrumentation_scope
