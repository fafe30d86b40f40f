"""The span bridge: the OpenTelemetry spans otelkit already records go to Sentry over OTLP.

This is the mechanism current sentry-sdk supports (``OTLPIntegration``: Sentry ingests OTLP
traces at ``/api/<project>/integration/otlp/v1/traces/``, and error events take the trace and
span id of the active OpenTelemetry span). The integration would add an exporter to the
*global* TracerProvider and replace the global propagator with a Sentry-only one; otelkit
switches both off and feeds Sentry from its own provider.

One batch span processor serves the collector and Sentry: a span is queued once, and its export
thread encodes each batch once for both (`encode_export_request_twice`, Sentry's copy scrubbed by
`ScrubbedSpans`), exports to the collector and hands Sentry's bytes to `SentrySpanSender`. The
sender has a bounded queue and a thread of its own, so a slow or hung Sentry fills only that
queue (drops counted in ``otel_sdk_processor_span_processed_total{error_type="queue_full"}``)
and never delays the collector's export or a request.

Why not the SDK's OTLP/HTTP exporter: it merges ``OTEL_EXPORTER_OTLP_HEADERS`` and the
``OTEL_EXPORTER_OTLP_*CERTIFICATE`` variables into every exporter, so the collector's API key
would travel to Sentry. Here the request carries Sentry's auth header and nothing else, and the
body is gzipped at level 1 (the SDK's level 9 costs four times the CPU for a few percent).
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import urllib3
from opentelemetry.metrics import MeterProvider, get_meter_provider
from opentelemetry.sdk._shared_internal._processor_metrics import (
    NoOpProcessorMetrics,
    ProcessorMetricsT,
    create_processor_metrics,
)
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.environment_variables._internal import parse_boolean_environment_variable
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv._incubating.attributes.otel_attributes import OtelComponentTypeValues
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from sentry_sdk.consts import VERSION, EndpointType
from sentry_sdk.utils import Dsn

from otelkit._internal.log_once import log_exception_once, log_once
from otelkit._internal.otlp_spans import encode_export_request_twice
from otelkit.sentry.span_encoding import ScrubbedSpans
from otelkit.settings import OtlpSettings

logger = logging.getLogger("otelkit")

EXPORT_TIMEOUT_SECONDS = 5.0
"""Per export request to Sentry: a hung ingest holds the Sentry thread this long, no more; shutdown
waits this long at most for what is queued."""
DEFAULT_RETRY_AFTER_SECONDS = 60.0
"""How long to stop sending when Sentry answers 429 without saying for how long."""


def sentry_otlp_endpoint(dsn: str) -> tuple[str, dict[str, str]]:
    """Sentry's OTLP trace endpoint for ``dsn`` and the ``X-Sentry-Auth`` header it wants."""
    auth = Dsn(dsn).to_auth(f"sentry.python/{VERSION}")
    return auth.get_api_url(EndpointType.OTLP_TRACES), {"X-Sentry-Auth": auth.to_header()}


class SentryTransport:
    """OTLP/HTTP protobuf to Sentry: one request per payload, no retries (Sentry's own SDK drops too),
    a pause when Sentry answers 429, failures logged once per reason."""

    def __init__(self, dsn: str) -> None:
        self._url, auth = sentry_otlp_endpoint(dsn)
        self._headers = {**auth, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        self._pool = _pool_for(self._url)
        self._paused_until = 0.0
        self._warned: set[str] = set()

    def send(self, payload: bytes) -> bool:
        if time.monotonic() < self._paused_until:
            return False
        try:
            body = gzip.compress(payload, compresslevel=1, mtime=0)  # zlib lets go of the GIL meanwhile
            response = self._pool.request("POST", self._url, body=body, headers=self._headers)
        except Exception as exc:
            self._warn_once(type(exc).__name__, "otelkit: sending spans to Sentry failed: %r", exc)
            return False
        if response.status == 429:
            self._paused_until = time.monotonic() + _retry_after(response.headers.get("Retry-After"))
        if response.status >= 300:
            self._warn_once(str(response.status), "otelkit: Sentry refused spans: HTTP %s", response.status)
            return False
        return True

    def close(self) -> None:
        self._pool.clear()

    def _warn_once(self, reason: str, message: str, *args: object) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            logger.warning(message + " (logged once per reason)", *args)


class SentrySpanSender:
    """Sentry's bounded queue of encoded batches and the thread that sends them.

    `submit` never blocks: a batch that does not fit (Sentry slow or down) is dropped, counted
    in the SDK's processor metrics like a batch span processor's drops, and logged once. A
    forked child starts with an empty queue and a thread of its own.
    """

    def __init__(self, transport: SentryTransport, *, max_queued_spans: int) -> None:
        self._transport = transport
        self._max_queued_spans = max_queued_spans
        self._metrics: ProcessorMetricsT = NoOpProcessorMetrics()
        self._drop_logged = False
        self._shutdown = False
        self._start()
        restart = weakref.WeakMethod(self._start)

        def restart_in_child() -> None:  # the parent's thread does not exist there; its lock may be held
            start = restart()
            if start is not None:
                start()

        os.register_at_fork(after_in_child=restart_in_child)

    def count_in(self, meter_provider: MeterProvider | None) -> None:
        """Count processed and dropped spans in the SDK's processor metrics (when they are on). Called
        after the batch processor is built, so that keeps its ``batching_span_processor/0`` name."""
        self._metrics = create_processor_metrics(
            "traces",
            OtelComponentTypeValues.BATCHING_SPAN_PROCESSOR,
            meter_provider or get_meter_provider(),
            capacity=self._max_queued_spans,
            enabled=parse_boolean_environment_variable(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED),  # as the SDK reads it
        )
        self._metrics.register_queue_size(lambda: self._queued_spans)

    def _start(self) -> None:
        self._queue: deque[tuple[bytes, int]] = deque()
        self._queued_spans = 0
        self._sending = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="otelkit-sentry-spans", daemon=True)
        self._thread.start()

    def submit(self, payload: bytes, spans: int) -> None:
        with self._changed:
            if self._shutdown:
                self.drop(spans, "already_shutdown")
                return
            if self._queued_spans + spans > self._max_queued_spans:
                dropped = True
            else:
                dropped = False
                self._queue.append((payload, spans))
                self._queued_spans += spans
                self._changed.notify_all()
        if dropped:
            self.drop(spans)
            if not self._drop_logged:
                self._drop_logged = True
                logger.warning("otelkit: Sentry's span queue is full; spans for Sentry are dropped until it drains")

    def drop(self, spans: int, error_type: str = "queue_full") -> None:
        """Count spans Sentry will not get. The SDK's metrics object knows two reasons (``queue_full``,
        ``already_shutdown``); others are added to its counter with their own ``error.type``."""
        metrics = self._metrics
        counter, attributes = getattr(metrics, "_processed", None), getattr(metrics, "_standard_attrs", None)
        if error_type in ("queue_full", "already_shutdown") or counter is None or attributes is None:
            metrics.drop_items(spans, error_type)
        else:
            counter.add(spans, {**attributes, ERROR_TYPE: error_type})

    def flush(self, timeout_seconds: float) -> bool:
        """Wait until everything submitted so far was sent (or failed); False on timeout."""
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while self._queue or self._sending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(remaining)
        return True

    def shutdown(self, timeout_seconds: float = EXPORT_TIMEOUT_SECONDS) -> None:
        """Send what is queued for at most ``timeout_seconds``, then stop: what is still queued then,
        and what comes later, is dropped and counted."""
        if self._shutdown:
            return
        self.flush(timeout_seconds)
        with self._changed:
            self._shutdown = True
            left = self._queued_spans
            self._queue.clear()
            self._queued_spans = 0
            self._changed.notify_all()
        if left:
            self.drop(left, "shutdown_timeout")
        self._thread.join(0.1)
        self._transport.close()

    def _work(self) -> None:
        changed = self._changed
        while True:
            with changed:
                while not self._queue and not self._shutdown:
                    changed.wait()
                if self._shutdown:
                    return
                payload, spans = self._queue.popleft()
                self._queued_spans -= spans
                self._sending = True
            try:
                self._metrics.finish_items(spans)
                self._transport.send(payload)
            except Exception:  # never let the thread die: the queue would fill for good
                log_exception_once("sentry-span-sender", "otelkit: sending spans to Sentry failed")
            finally:
                with changed:
                    self._sending = False
                    changed.notify_all()


class PreEncodingExporter(Protocol):
    """An exporter that can send a batch otelkit's encoder already encoded (the collector's, gRPC or HTTP)."""

    def export_encoded(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult: ...


_DEFAULT_MAX_REQUEST_BYTES: int = OtlpSettings.model_fields["max_request_bytes"].default


class SentryFanOut(SpanExporter):
    """The exporter behind otelkit's batch span processor when Sentry takes spans: each batch is
    encoded once for the collector and Sentry and goes to both; without a collector, to Sentry alone."""

    def __init__(
        self,
        collector: SpanExporter | None,
        sender: SentrySpanSender,
        scrubbed: ScrubbedSpans,
        max_request_bytes: int = _DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self._collector = collector
        self._sender = sender
        self._scrubbed = scrubbed
        self._max_request_bytes = max_request_bytes

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        collector = self._collector
        collector_payload = None
        try:
            if collector is not None and hasattr(collector, "export_encoded"):
                collector_payload, sentry_payload = encode_export_request_twice(spans, self._scrubbed)
            else:
                sentry_payload = self._scrubbed.encode(spans)
            self._submit(spans, sentry_payload)
        except Exception:  # Sentry's part must not cost the collector its batch
            log_exception_once("sentry-span-encoding", "otelkit: encoding spans for Sentry failed")
            self._sender.drop(len(spans), "encoding_failed")
        if collector is None:
            return SpanExportResult.SUCCESS
        if collector_payload is not None:
            return collector.export_encoded(spans, collector_payload)  # type: ignore[attr-defined, no-any-return]
        return collector.export(spans)

    def _submit(self, spans: Sequence[ReadableSpan], payload: bytes) -> None:
        """Sentry's request, or requests within ``otlp.max_request_bytes`` split as the collector's
        are (a receiver refuses a larger request whole); a span over it alone is counted, not sent."""
        if len(payload) <= self._max_request_bytes:
            self._sender.submit(payload, len(spans))
            return
        requests, oversized = self._scrubbed.encode_requests(spans, self._max_request_bytes)
        for part, part_payload in requests:
            self._sender.submit(part_payload, len(part))
        if oversized:
            self._sender.drop(len(oversized), "SpanTooLarge")
            log_once(
                "sentry-span-too-large",
                "otelkit: span(s) larger than otlp.max_request_bytes (%d) were not sent to Sentry",
                self._max_request_bytes,
            )

    def shutdown(self) -> None:
        if self._collector is not None:
            self._collector.shutdown()
        self._sender.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        collector = self._collector.force_flush(timeout_millis) if self._collector is not None else True
        return self._sender.flush(timeout_millis / 1000) and collector


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
    "SentryFanOut",
    "SentrySpanSender",
    "SentryTransport",
    "sentry_otlp_endpoint",
]
