"""Start and stop sentry-sdk from otelkit's settings, as one part of one pipeline.

`plan_sentry` decides (no side effects) whether Sentry runs: when enabled, with a DSN, outside
the pytest capture, and only if the application has not initialised sentry-sdk itself.
`SentryBridge.start` initialises sentry-sdk for errors only (``traces_sample_rate=None``,
``instrumenter="otel"``: it never builds a transaction or span of its own), with the integrations
that cost nothing per request (dedupe, excepthook, atexit, logging) and ``OTLPIntegration``
for the trace linking; the spans themselves reach Sentry through `SentryFanOut`, the exporter
of otelkit's batch span processor beside the collector's. No auto-enabling integration is loaded:
Sentry's Starlette and FastAPI integrations would wrap every request in a second tracing
middleware (issue 4 measured 0.08x of bare throughput; `bench/bench_sentry.py --peers` shows it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import sentry_sdk
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace.export import SpanExporter
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.otlp import OTLPIntegration
from sentry_sdk.scope import add_global_event_processor
from sentry_sdk.utils import BadDsn, Dsn

from otelkit._internal.env_source import setting_origin
from otelkit._internal.log_once import log_exception_once
from otelkit._internal.standard_env import secrets_dir
from otelkit.errors import OtelkitConfigError
from otelkit.sentry import breadcrumbs
from otelkit.sentry.asgi import SentryRequestMiddleware, describe_current_request
from otelkit.sentry.sampling import check_one_ratio, spans_go_to_sentry, trace_sample_ratio
from otelkit.sentry.scrubbing import Scrubber
from otelkit.sentry.span_encoding import ScrubbedSpans
from otelkit.sentry.spans import EXPORT_TIMEOUT_SECONDS, SentryFanOut, SentrySpanSender, SentryTransport
from otelkit.settings import OtelkitSettings

logger = logging.getLogger("otelkit")

BeforeSend = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]
RELEASE_VARIABLE = "SENTRY_RELEASE"
"""Sentry's own variable for a build id (``sentry-cli releases propose-version``, CI)."""
SHUTDOWN_TIMEOUT_SECONDS = 2.0
"""sentry-sdk's own default: at shutdown, queued events get this long to reach Sentry."""


_request_processor_added = False


def _describe_requests_once() -> None:
    """sentry-sdk keeps global event processors for the life of the process: add ours once."""
    global _request_processor_added
    if not _request_processor_added:
        add_global_event_processor(describe_current_request)
        _request_processor_added = True


def release_of(settings: OtelkitSettings) -> str:
    """``SENTRY_RELEASE`` when the build sets one, else ``<service.name>@<service.version>``."""
    build = os.environ.get(RELEASE_VARIABLE, "").strip()
    return build or f"{settings.service.name}@{settings.service.version}"


def environment_of(settings: OtelkitSettings) -> str:
    return settings.sentry.environment or settings.service.environment


def plan_sentry(
    settings: OtelkitSettings, *, capturing: bool, before_send: BeforeSend | None = None
) -> SentryBridge | None:
    """The Sentry part of the pipeline ``settings`` ask for, or None; raises for bad settings."""
    sentry = settings.sentry
    if not sentry.enabled or sentry.dsn is None:
        return None
    dsn = sentry.dsn.get_secret_value()
    try:
        Dsn(dsn)
    except (BadDsn, ValueError):  # a port that is not a number raises ValueError
        origin = setting_origin("sentry", "dsn", secrets_dir())
        if origin is not None and origin.raw is not None and origin.raw.strip() != dsn:
            origin = None  # the environment holds another DSN: this one is otelkit.init()'s argument
        where = origin.source if origin else "argument to otelkit.init(); variable OTELKIT_SENTRY__DSN"
        raise OtelkitConfigError(
            f"setting sentry.dsn ({where}) = <redacted>: sentry-sdk cannot parse it; expected "
            "https://<public key>@<host>/<project id>"
        ) from None
    if spans_go_to_sentry(settings):
        check_one_ratio(settings)
    if capturing:
        logger.info("otelkit: Sentry stays off under the pytest capture (nothing leaves the process)")
        return None
    if sentry_sdk.get_client().is_active():
        logger.warning(
            "otelkit: sentry_sdk.init() was already called by the application; otelkit leaves that client alone "
            "and its Sentry settings (OTELKIT_SENTRY__*) are not applied"
        )
        return None
    return SentryBridge(settings, dsn, before_send)


class SentryBridge:
    """sentry-sdk for one otelkit handle: started by `init()`, closed by ``handle.shutdown()``."""

    def __init__(self, settings: OtelkitSettings, dsn: str, before_send: BeforeSend | None = None) -> None:
        self.settings = settings
        self._dsn = dsn
        self._app_before_send = before_send
        privacy = settings.sentry_privacy
        self.scrubber = Scrubber(privacy.scrub_fields, privacy.scrub_values, send_default_pii=privacy.send_default_pii)
        self._client: Any = None
        self._sender: SentrySpanSender | None = None

    @property
    def sample_ratio(self) -> float:
        """The one sampler's ratio (see `otelkit.sentry.sampling`)."""
        return trace_sample_ratio(self.settings, sentry_started=True)

    def span_exporter(self, collector: SpanExporter | None) -> SpanExporter | None:
        """The exporter of otelkit's batch span processor: ``collector`` (may be None) and Sentry, each
        batch encoded once for both; None when Sentry takes no spans. Sentry's queue is bounded like
        the processor's."""
        if not spans_go_to_sentry(self.settings):
            return None
        self._sender = SentrySpanSender(
            SentryTransport(self._dsn), max_queued_spans=self.settings.tracing.max_queue_size
        )
        return SentryFanOut(
            collector,
            self._sender,
            ScrubbedSpans(self.scrubber),
            max_request_bytes=self.settings.otlp.max_request_bytes,
        )

    def count_spans_in(self, meter_provider: MeterProvider | None) -> None:
        """Sentry's span queue in the SDK's processor metrics, after the batch processor's."""
        if self._sender is not None:
            self._sender.count_in(meter_provider)

    def start(self) -> None:
        sentry = self.settings.sentry
        sentry_sdk.init(
            dsn=self._dsn,
            release=release_of(self.settings),
            environment=environment_of(self.settings),
            sample_rate=sentry.sample_rate,
            traces_sample_rate=None,
            instrumenter="otel",
            # send_default_pii is not passed (deprecated in sentry-sdk; it governs only integrations
            # otelkit does not load): otelkit's scrubber and request middleware apply the setting.
            include_local_variables=False,  # locals hold bodies and tokens under names no scrubber can guess
            default_integrations=False,
            auto_enabling_integrations=False,
            integrations=[
                AtexitIntegration(),
                DedupeIntegration(),
                ExcepthookIntegration(),
                LoggingIntegration(),
                OTLPIntegration(setup_otlp_traces_exporter=False, setup_propagator=False),
            ],
            before_send=self._before_send,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        )
        self._client = sentry_sdk.get_client()
        sentry_sdk.get_global_scope().set_tag("service", self.settings.service.name)
        _describe_requests_once()
        breadcrumbs.enable()

    def _before_send(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        """The application's ``before_send`` first (it sees the event whole), then the scrubber, last."""
        if self._app_before_send is not None:
            try:
                changed = self._app_before_send(event, hint)
            except Exception:  # a broken hook must not cost the error report (sentry-sdk would drop it)
                log_exception_once("sentry-before-send", "otelkit: the application's sentry_before_send failed")
                changed = event
            if changed is None:
                return None
            event = changed
        scrubbed: dict[str, Any] = self.scrubber.scrub(event)
        return scrubbed

    def instrument_app(self, app: Any) -> None:
        """Add the request middleware; before otelkit's HTTP middleware, so it ends up inside it."""
        if getattr(app.state, "otelkit_sentry", None) is self or getattr(app, "middleware_stack", None) is not None:
            return  # already done, or too late: attach() reports the latter
        app.add_middleware(
            SentryRequestMiddleware,
            routes_of=app,
            scrubber=self.scrubber,
            send_default_pii=self.settings.sentry_privacy.send_default_pii,
        )
        app.state.otelkit_sentry = self

    def flush(self, timeout_seconds: float) -> None:
        if self._sender is not None:
            self._sender.flush(timeout_seconds)
        if self._client is not None and self._client.is_active():
            self._client.flush(timeout=timeout_seconds)

    def close(self, timeout_seconds: float) -> None:
        """Flush queued events (at most ``SHUTDOWN_TIMEOUT_SECONDS``) and stop the client."""
        if self._sender is not None:
            self._sender.shutdown(min(timeout_seconds, EXPORT_TIMEOUT_SECONDS))
        client, self._client = self._client, None
        if client is None:
            return
        breadcrumbs.disable()
        client.close(timeout=min(timeout_seconds, SHUTDOWN_TIMEOUT_SECONDS))
        scope = sentry_sdk.get_global_scope()
        if scope.client is client:
            scope.set_client(None)
        scope.remove_tag("service")


__all__ = ["SentryBridge", "environment_of", "plan_sentry", "release_of"]
