"""OTLP span exporters: the SDK's (retries, timeouts, TLS, compression), sending otelkit's wire
encoding, and in parts when a batch is over ``otlp.max_request_bytes``.

Why otelkit's encoding: the SDK's builds a protobuf object per span, attribute and value (about
35 us a span), in the export thread of the process serving requests. Why parts: a receiver
refuses a message over its limit whole (gRPC servers and the collector's gRPC receiver: 4 MiB
unless configured otherwise; its HTTP receiver: 20 MiB), so a batch of spans carrying stack
traces or SQL would lose every span in it, after retries that hold up the export thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelkit._internal.exporters import otlp_connection
from otelkit._internal.log_once import log_exception_once, log_once
from otelkit._internal.otlp_spans import encode_export_request, encode_export_requests
from otelkit.settings import OtlpSettings


class SpanTooLarge(ValueError):
    """A span whose encoding alone is over ``otlp.max_request_bytes``: the ``error_type`` it is counted under."""


class ExportRefused(RuntimeError):
    """An HTTP status refusing a request: at once (400, 413) or after its retries (429, 5xx); the
    status code is on the failure too. The SDK's own exporter counts such spans as exported."""


class ExportAbandoned(RuntimeError):
    """Spans of a split batch not sent after an earlier part failed: the ``error_type`` they are counted under."""


class _SplitsRequests:
    """``export`` for the SDK's OTLP span exporters: encoded by otelkit, sent whole or in parts by `_send`.

    After a part fails (its retries spent), the parts left are not sent: each would wait out the
    whole timeout again while the span queue fills. Their spans are counted as failed in the
    SDK's ``otel_sdk_exporter_span_exported_total`` (``error_type="ExportAbandoned"``), as are
    spans too large for any request (``"SpanTooLarge"``, logged once).
    """

    max_request_bytes: int
    _shutdown: bool
    _metrics: Any  # the SDK exporter's own counters (a no-op object while they are off)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            payload = encode_export_request(spans)
        except Exception as error:  # counted as the SDK's exporters count a batch they cannot encode
            log_exception_once("otlp-span-encoding", "otelkit: encoding spans for OTLP failed")
            self._count_failed(len(spans), error)
            return SpanExportResult.FAILURE
        return self.export_encoded(spans, payload)

    def export_encoded(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
        """Export ``spans`` as ``payload``, their encoding already made (with Sentry's, in one pass)."""
        if len(payload) <= self.max_request_bytes or self._shutdown:
            return self._send(spans, payload)
        requests, oversized = encode_export_requests(spans, self.max_request_bytes)
        if oversized:
            self._count_failed(len(oversized), SpanTooLarge(f"encoded alone over {self.max_request_bytes} bytes"))
            log_once(
                "otlp-span-too-large",
                "otelkit: %d span(s) left out of the OTLP export: each is larger than otlp.max_request_bytes"
                " (%d) on its own, which the receiver would refuse; large attribute values (stack traces,"
                " statements) are the usual cause, and OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT bounds them",
                len(oversized),
                self.max_request_bytes,
            )
        for sent, (part, part_payload) in enumerate(requests):
            if self._shutdown:  # shut down between parts: the SDK would refuse this one uncounted
                self._abandon(requests[sent:], "the exporter was shut down")
                return SpanExportResult.FAILURE
            if self._send(part, part_payload) is not SpanExportResult.SUCCESS:
                self._abandon(requests[sent + 1 :], "an earlier part of the batch failed")
                return SpanExportResult.FAILURE
        return SpanExportResult.FAILURE if oversized else SpanExportResult.SUCCESS

    def _abandon(self, requests: Sequence[tuple[list[ReadableSpan], bytes]], why: str) -> None:
        abandoned = sum(len(part) for part, _ in requests)
        if abandoned:
            self._count_failed(abandoned, ExportAbandoned(why))

    def _send(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
        """One request through the SDK exporter's retries, counted by its metrics."""
        raise NotImplementedError

    def _count_failed(self, count: int, error: Exception) -> None:
        with self._metrics.export_operation(count) as result:
            result.error = error


class _Encoded(list[ReadableSpan]):
    """A batch with its wire encoding, for the gRPC exporter's ``_translate_data``."""

    def __init__(self, spans: Sequence[ReadableSpan], payload: bytes) -> None:
        super().__init__(spans)
        self.payload = payload


def grpc_span_exporter(otlp: OtlpSettings, meter_provider: MeterProvider | None = None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    class PreEncodedTraceStub:
        """``TraceService/Export`` taking the request as wire bytes (no serializer: gRPC sends them as is)."""

        def __init__(self, channel: Any) -> None:
            self.Export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=None,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )

    class FastEncodingGrpcExporter(_SplitsRequests, OTLPSpanExporter):
        """The bytes go out as encoded: parsing them into the SDK's message only to serialise it
        again cost 12 us a span."""

        def _initialize_channel_and_stub(self) -> None:
            super()._initialize_channel_and_stub()
            self._client = PreEncodedTraceStub(self._channel)

        def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
            return data.payload if isinstance(data, _Encoded) else encode_export_request(data)

        def _send(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
            return OTLPSpanExporter.export(self, _Encoded(spans, payload))

    exporter = FastEncodingGrpcExporter(**otlp_connection(otlp, "traces"), meter_provider=meter_provider)
    exporter.max_request_bytes = otlp.max_request_bytes
    return exporter


def http_span_exporter(otlp: OtlpSettings, meter_provider: MeterProvider | None = None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

    class FastEncodingHttpExporter(_SplitsRequests, OTLPSpanExporter):
        """Sends through the SDK exporter's HTTP client (retries, Retry-After, compression), as its
        own ``export`` does with the SDK's encoding."""

        def _send(self, spans: Sequence[ReadableSpan], payload: bytes) -> SpanExportResult:
            if self._shutdown:
                return OTLPSpanExporter.export(self, spans)  # refused and logged as the SDK does
            with self._metrics.export_operation(len(spans)) as result:
                outcome = self._client.export(payload)
                if not outcome.success:
                    if outcome.status_code is not None:
                        result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: outcome.status_code}
                        result.error = outcome.error or ExportRefused(f"HTTP {outcome.status_code} {outcome.reason}")
                    else:
                        result.error = outcome.error or ExportAbandoned("retries cut short by shutdown")
                    return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    exporter = OTLPSpanExporter(**otlp_connection(otlp, "traces"), meter_provider=meter_provider)
    if not callable(getattr(getattr(exporter, "_client", None), "export", None)):
        return exporter  # an SDK release without the client relied on: its own export, unsplit
    # The same object, given otelkit's export: built once, as the SDK numbers its exporters as built.
    exporter.__class__ = FastEncodingHttpExporter
    exporter.max_request_bytes = otlp.max_request_bytes
    return exporter
