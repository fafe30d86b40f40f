"""The span bridge: the OpenTelemetry spans otelkit already records go to Sentry over OTLP.

This is the mechanism current sentry-sdk supports (``OTLPIntegration``: Sentry ingests OTLP
traces at ``/api/<project>/integration/otlp/v1/traces/``, and error events take the trace and
span id of the active OpenTelemetry span). The integration would add an exporter to the
*global* TracerProvider and replace the global propagator with a Sentry-only one; otelkit
switches both off and attaches `SentrySpanExporter` to its own provider, behind a bounded
batch processor of its own, so a slow Sentry fills only Sentry's queue and never delays the
collector's export or a request.

Why not the SDK's OTLP/HTTP exporter: it merges ``OTEL_EXPORTER_OTLP_HEADERS`` and the
``OTEL_EXPORTER_OTLP_*CERTIFICATE`` variables into every exporter, so the collector's API key
would travel to Sentry. Here the request carries Sentry's auth header and nothing else; spans
are scrubbed (query strings, secret path parameters, header captures, client addresses, card
numbers in messages and status descriptions), encoded once per batch with otelkit's OTLP
encoder, and gzipped at level 1 (the SDK's level 9 costs four times the CPU for a few percent).
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import urllib3
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from sentry_sdk.consts import VERSION, EndpointType
from sentry_sdk.utils import Dsn

from otelkit._internal.otlp_spans import encode_attribute, encode_export_request
from otelkit.sentry.scrubbing import Scrubber

logger = logging.getLogger("otelkit")

EXPORT_TIMEOUT_SECONDS = 5.0
"""Per export request to Sentry: a hung ingest holds the Sentry export thread this long, no more."""
DEFAULT_RETRY_AFTER_SECONDS = 60.0
"""How long to stop sending when Sentry answers 429 without saying for how long."""
_CACHE_LIMIT = 8192
_MISSING = object()
_SCALARS = (str, bool, int, float)
DROP_REPORT_BATCH = 64
_CHUNK = 32
"""Spans scrubbed and encoded at a time. Serialised requests concatenate into one (``resource_spans``
is a repeated field), and short-lived copies die young instead of reaching the old GC generation."""


def sentry_otlp_endpoint(dsn: str) -> tuple[str, dict[str, str]]:
    """Sentry's OTLP trace endpoint for ``dsn`` and the ``X-Sentry-Auth`` header it wants."""
    auth = Dsn(dsn).to_auth(f"sentry.python/{VERSION}")
    return auth.get_api_url(EndpointType.OTLP_TRACES), {"X-Sentry-Auth": auth.to_header()}


class _ScrubbedSpan:
    """What the encoder reads of a finished span, with attributes, events and status scrubbed."""

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

    def __init__(self, span: ReadableSpan, attributes: Mapping[str, Any], events: Sequence[Event], status: Status):
        self.attributes, self.events, self.status = attributes, events, status
        self.context, self.parent, self.name, self.kind = span.context, span.parent, span.name, span.kind
        self.start_time, self.end_time, self.links = span.start_time, span.end_time, span.links
        self.resource, self.instrumentation_scope = span.resource, span.instrumentation_scope
        self.dropped_attributes, self.dropped_events = span.dropped_attributes, span.dropped_events
        self.dropped_links = span.dropped_links


def _pair_key(key: str, value: Any, route: str | None = None) -> tuple[Any, ...] | None:
    """The cache key of one attribute pair; None for a sequence, never cached ((True,) == (1,) as keys).
    The value's type is in it: True, 1 and 1.0 are equal as dict keys but not on the wire. ``url.path``
    is scrubbed by route, so the route is in its key."""
    if value.__class__ not in _SCALARS:
        return None
    return (key, value.__class__, value, route) if key == "url.path" else (key, value.__class__, value)


_PairKey = tuple[Any, ...]


def _cached(cache: dict[_PairKey, Any], key: _PairKey | None, compute: Callable[..., Any], *args: Any) -> Any:
    """``compute(*args)`` once per key in a bounded cache (cleared when full); every time for a None key."""
    if key is None:
        return compute(*args)
    found = cache.get(key, _MISSING)
    if found is _MISSING:
        found = compute(*args)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = found
    return found


class SpanScrubber:
    """Scrubs what `ScrubbedAttributesEncoder` does not see: events' attributes and status
    descriptions. Pairs repeat, so each distinct one is scrubbed once (bounded cache)."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._pairs: dict[tuple[Any, ...], Any] = {}

    def attributes(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """``attributes`` itself when nothing changes, else a scrubbed copy."""
        scrubbed: dict[str, Any] = {}
        changed = False
        for key, value in attributes.items():
            result = _cached(self._pairs, _pair_key(key, value), self._scrubber.scrub_attribute, key, value)
            changed = changed or result != value
            scrubbed[key] = result
        return scrubbed if changed else attributes

    def events_and_status(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` itself unless it has events or a status description, which get scrubbed here;
        its attributes are left for `ScrubbedAttributesEncoder`."""
        if not span.events and not span.status.description:
            return span
        events = [Event(event.name, self.attributes(event.attributes or {}), event.timestamp) for event in span.events]
        status = span.status
        if status.description:
            status = Status(status.status_code, self._scrubber.scrub_text(status.description))
        return cast(ReadableSpan, _ScrubbedSpan(span, span.attributes or {}, events, status))


class ScrubbedAttributesEncoder:
    """Encodes span attributes scrubbed, for `encode_export_request`: each distinct pair is scrubbed
    and encoded once (bounded cache), so a span costs what the collector's encoding costs and no
    copy of it is made. ``url.path`` is scrubbed by the span's route template, which is in the key."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._pairs: dict[tuple[Any, ...], bytes] = {}

    def __call__(self, attributes: Mapping[str, Any]) -> bytes:
        route = attributes.get("http.route")
        route = route if isinstance(route, str) else None
        pairs = self._pairs
        parts = []
        for key, value in attributes.items():  # `_cached`, inlined: this loop runs for every attribute exported
            cache_key = _pair_key(key, value, route)
            encoded = pairs.get(cache_key) if cache_key is not None else None
            if encoded is None:
                encoded = _cached(pairs, cache_key, self._encode, key, value, route)
            parts.append(encoded)
        return b"".join(parts)

    def _encode(self, key: str, value: Any, route: str | None) -> bytes:
        return encode_attribute(9, key, self._scrubber.scrub_attribute(key, value, route))


class SentrySpanExporter(SpanExporter):
    """OTLP/HTTP protobuf to Sentry: one request per batch, no retries (Sentry's own SDK drops too),
    a pause when Sentry answers 429, failures logged once."""

    def __init__(self, dsn: str, scrubber: Scrubber) -> None:
        self._url, auth = sentry_otlp_endpoint(dsn)
        self._headers = {**auth, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        self._pool = _pool_for(self._url)
        self._span_scrubber = SpanScrubber(scrubber)
        self._attributes_encoder = ScrubbedAttributesEncoder(scrubber)
        self._paused_until = 0.0
        self._warned: set[str] = set()
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown or time.monotonic() < self._paused_until:
            return SpanExportResult.FAILURE
        try:
            scrub, attributes = self._span_scrubber.events_and_status, self._attributes_encoder
            payload = b"".join(
                encode_export_request([scrub(span) for span in spans[start : start + _CHUNK]], attributes)
                for start in range(0, len(spans), _CHUNK)
            )
            body = gzip.compress(payload, compresslevel=1, mtime=0)
            response = self._pool.request("POST", self._url, body=body, headers=self._headers)
        except Exception as exc:
            self._warn_once(type(exc).__name__, "otelkit: sending spans to Sentry failed: %r", exc)
            return SpanExportResult.FAILURE
        if response.status == 429:
            self._paused_until = time.monotonic() + _retry_after(response.headers.get("Retry-After"))
        if response.status >= 300:
            self._warn_once(str(response.status), "otelkit: Sentry refused spans: HTTP %s", response.status)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _warn_once(self, reason: str, message: str, *args: object) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            logger.warning(message + " (logged once per reason)", *args)

    def shutdown(self) -> None:
        self._shutdown = True
        self._pool.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class SentryBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, with changes for a Sentry that is down or slow.

    A full queue drops the span quietly: the SDK logs a warning for every dropped span, which
    with Sentry down means thousands of log records a second (each also a breadcrumb) on the
    request path. Drops are still counted in ``otel_sdk_processor_span_processed_total
    {error_type="queue_full"}``, added up in batches of `DROP_REPORT_BATCH` (an SDK counter add
    costs several microseconds) and in full on flush and shutdown, and logged once. Shutdown
    waits one export timeout at most (the SDK's default would hold a stopping process 30 s).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drops = 0
        self._drops_lock = threading.Lock()
        self._drop_logged = False

    def on_end(self, span: ReadableSpan) -> None:
        batch = self._batch_processor
        if len(batch._queue) < batch._max_queue_size or batch._shutdown:
            super().on_end(span)
            return
        with self._drops_lock:
            self._drops += 1
            report = self._drops >= DROP_REPORT_BATCH
        if report:
            self._report_drops()
        if not self._drop_logged:
            self._drop_logged = True
            logger.warning("otelkit: Sentry's span queue is full; spans for Sentry are dropped until it drains")

    def _report_drops(self) -> None:
        with self._drops_lock:
            drops, self._drops = self._drops, 0
        if drops:
            self._batch_processor._metrics.drop_items(drops)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        self._report_drops()
        return super().force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._report_drops()
        self._batch_processor.shutdown(timeout_millis=int(EXPORT_TIMEOUT_SECONDS * 1000))


def _pool_for(url: str) -> urllib3.PoolManager | urllib3.ProxyManager:
    """One keep-alive connection, bounded timeouts, certifi's CAs (as sentry-sdk), the proxy variables."""
    options: dict[str, Any] = {
        "num_pools": 1,
        "maxsize": 1,
        "retries": False,
        "timeout": urllib3.Timeout(total=EXPORT_TIMEOUT_SECONDS),
        "ca_certs": certifi.where(),
    }
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if proxy and not proxy_bypass(parts.hostname or ""):  # proxy_bypass reads no_proxy
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


def _retry_after(value: str | None) -> float:
    try:
        return float(value) if value else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS


__all__ = [
    "EXPORT_TIMEOUT_SECONDS",
    "SentryBatchSpanProcessor",
    "SentrySpanExporter",
    "SpanScrubber",
    "sentry_otlp_endpoint",
]
