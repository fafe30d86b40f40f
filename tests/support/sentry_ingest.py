"""A Sentry ingest double on loopback: the envelope endpoint and the OTLP trace endpoint.

It speaks what sentry-sdk speaks to sentry.io: ``POST /api/<project>/envelope/`` (gzip, brotli
or plain; newline-delimited items, each with a JSON header and an optional byte ``length``)
and ``POST /api/<project>/integration/otlp/v1/traces/`` (OTLP/HTTP protobuf), both with
``X-Sentry-Auth: Sentry sentry_key=<public key>, ...``. Each error or transaction event is
passed through ``sentry_relay``'s ``StoreNormalizer``, the normalizer of Sentry's own
ingestion: what it cannot parse, or parses with errors (fields Sentry would drop), is a
rejection, and `SentryIngest.assert_accepted` fails the test. What arrived is kept decoded
(``bodies``) so privacy assertions run on what was really sent.

``hang()`` makes the endpoint read requests and then answer nothing until ``release()``: a
Sentry that is down in the worst way, holding connections open. ``validate=False, keep=False``
accepts and discards, for benchmarks.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.support.http_server import serving
from tests.support.otlp_sink import spans_of

ENVELOPE_PATH = re.compile(r"^/api/(\d+)/envelope/$")
OTLP_PATH = re.compile(r"^/api/(\d+)/integration/otlp/v1/traces/?$")
AUTH_KEY = re.compile(r"sentry_key=([^,\s]+)")


@dataclass
class EnvelopeItem:
    headers: dict[str, Any]
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Envelope:
    headers: dict[str, Any]
    items: list[EnvelopeItem] = field(default_factory=list)


def parse_envelope(body: bytes) -> Envelope:
    """Sentry's envelope format: a header line, then items of a header line and a payload."""
    header_line, _, rest = body.partition(b"\n")
    envelope = Envelope(json.loads(header_line))
    while rest.strip():
        item_header_line, _, rest = rest.partition(b"\n")
        item_headers = json.loads(item_header_line)
        if "length" in item_headers:
            length = int(item_headers["length"])
            payload, rest = rest[:length], rest[length:]
            if len(payload) != length:
                raise ValueError(f"item declares {length} bytes, {len(payload)} present")
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        envelope.items.append(EnvelopeItem(item_headers, payload))
    return envelope


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]  # sentry-sdk uses it only when installed

        return bytes(brotli.decompress(body))
    raise ValueError(f"unsupported content-encoding {encoding!r}")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a held request (the hung-ingest case) is expected, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SentryIngest:
    """The double; use as a context manager. ``dsn`` points sentry-sdk at it."""

    def __init__(
        self, *, project_id: int = 42, public_key: str = "otelkitpublic", validate: bool = True, keep: bool = True
    ) -> None:
        self.project_id = project_id
        self.public_key = public_key
        self._validate = validate
        self._keep = keep
        self.events: list[dict[str, Any]] = []
        """Error events as Relay normalised them (what Sentry would store)."""
        self.transactions: list[dict[str, Any]] = []
        self.envelopes: list[Envelope] = []
        self.client_reports: list[dict[str, Any]] = []
        self.otlp_requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.bodies: list[bytes] = []
        """Every request body as received, decompressed: privacy assertions search these."""
        self.headers: list[dict[str, str]] = []
        """Every request's headers (names lower-cased), in arrival order."""
        self.rejections: list[str] = []
        self.held = 0
        """Requests being held right now by `hang()`."""
        self.most_held = 0
        self._release = threading.Event()
        self._release.set()
        self._changed = threading.Condition()
        self._normalizer: Any = None
        self._normalize_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._running = ExitStack()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SentryIngest:
        if self._validate:
            from sentry_relay.processing import StoreNormalizer

            self._normalizer = StoreNormalizer(project_id=self.project_id)
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True  # a request held by hang() must not block closing
        self._running.enter_context(serving(self._server, name="sentry-ingest"))
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._running.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "use SentryIngest as a context manager"
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project_id}"

    def hang(self) -> None:
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    # -- what arrived ------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def spans(self) -> list[Any]:
        return spans_of(self.otlp_requests)

    def discarded(self) -> dict[tuple[str, str], int]:
        """(reason, category) -> quantity, summed over the client reports sentry-sdk sent."""
        totals: dict[tuple[str, str], int] = {}
        for report in self.client_reports:
            for entry in report.get("discarded_events", []):
                key = (entry["reason"], entry["category"])
                totals[key] = totals.get(key, 0) + int(entry["quantity"])
        return totals

    def assert_accepted(self) -> None:
        """Fail when anything that arrived would have been rejected or stripped by Sentry."""
        assert not self.rejections, "Sentry would reject:\n" + "\n".join(self.rejections)

    # -- handling ----------------------------------------------------------------------------
    def _note(self, change: Callable[[], None]) -> None:
        with self._changed:
            change()
            self._changed.notify_all()

    def _reject(self, reason: str) -> None:
        self._note(lambda: self.rejections.append(reason))

    def _hold_while_hung(self) -> None:
        if self._release.is_set():
            return
        with self._changed:
            self.held += 1
            self.most_held = max(self.most_held, self.held)
            self._changed.notify_all()
        self._release.wait()
        with self._changed:
            self.held -= 1
            self._changed.notify_all()

    def _authorised(self, headers: Any, query: str) -> bool:
        found = AUTH_KEY.search(headers.get("x-sentry-auth", "")) or AUTH_KEY.search(query)
        return found is not None and found.group(1) == self.public_key

    def _take(self, path: str, headers: Any, body: bytes) -> bool:
        """Decode and keep one request; False (and a rejection) when Sentry would answer 400."""
        try:
            decoded = _decompress(body, headers.get("content-encoding"))
            if ENVELOPE_PATH.match(path):
                envelope = parse_envelope(decoded)
                self._note(lambda: self._take_envelope(envelope))
            else:
                if headers.get("content-type") != "application/x-protobuf":
                    raise ValueError(f"OTLP content-type {headers.get('content-type')!r}")
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(decoded)
                self._note(lambda: self.otlp_requests.append(request))
        except Exception as exc:
            self._reject(f"{path}: {exc!r}")
            return False
        self._note(lambda: self.bodies.append(decoded))
        return True

    def _take_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            kind = item.headers.get("type")
            if kind in ("event", "transaction"):
                normalised = self._normalise(item.payload)
                if normalised is not None:
                    (self.events if kind == "event" else self.transactions).append(normalised)
            elif kind == "client_report":
                self.client_reports.append(item.json())
        self.envelopes.append(envelope)

    def _normalise(self, payload: bytes) -> dict[str, Any] | None:
        if self._normalizer is None:
            return dict(json.loads(payload))
        try:
            with self._normalize_lock:
                normalised: dict[str, Any] = self._normalizer.normalize_event(raw_event=payload)
        except Exception as exc:
            self.rejections.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            return None
        if normalised.get("errors"):
            self.rejections.append(f"normalisation errors: {normalised['errors']}")
        return normalised

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                match = ENVELOPE_PATH.match(path) or OTLP_PATH.match(path)
                if match is None or int(match.group(1)) != ingest.project_id:
                    return self._answer(404, b'{"detail":"not found"}')
                if not ingest._authorised(self.headers, query):
                    ingest._reject(f"bad auth on {path}")
                    return self._answer(401, b'{"detail":"invalid api key"}')
                ingest._note(lambda: ingest.headers.append({k.lower(): v for k, v in self.headers.items()}))
                ingest._hold_while_hung()
                if ingest._keep and not ingest._take(path, self.headers, body):
                    return self._answer(400, b'{"detail":"invalid body"}')
                if OTLP_PATH.match(path):
                    payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                    return self._answer(200, payload, "application/x-protobuf")
                return self._answer(200, b"{}")

            def _answer(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


__all__ = ["Envelope", "EnvelopeItem", "SentryIngest", "parse_envelope"]
