"""``GET /sla/status`` and ``GET /sla/uptime`` for one handle, from whichever source the settings choose.

Without ``sla.prometheus_url``: in-process rolling windows fed by the HTTP middleware and by a
synthetic runner in the same process. With it: Prometheus's recording rules; a Prometheus that
cannot answer gives ``503 {"status": "unavailable", "source": "prometheus", "error": "..."}``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from otelkit._internal.log_once import log_exception_once
from otelkit.health import describe_error
from otelkit.settings import SlaSettings
from otelkit.sla.inprocess import InProcessSource
from otelkit.sla.prometheus import PrometheusSource, PrometheusUnavailable
from otelkit.sla.targets import WINDOW_SECONDS, status_document
from otelkit.sla.uptime import uptime_document

if TYPE_CHECKING:
    from otelkit.synthetic.execute import CheckResult

logger = logging.getLogger("otelkit")
_NO_STORE = {"cache-control": "no-store"}


class SlaMonitor:
    """The SLA source of one handle and the two endpoints that report it."""

    def __init__(self, settings: SlaSettings, *, service: str, bounds: Sequence[float]) -> None:
        self.settings = settings
        self.service = service
        self.in_process_source: InProcessSource | None = None
        self.source: InProcessSource | PrometheusSource
        if settings.prometheus_url is None:
            self.in_process_source = InProcessSource(bounds)
            self.source = self.in_process_source
        else:
            self.source = PrometheusSource(
                settings.prometheus_url,
                timeout_seconds=settings.prometheus_timeout_seconds,
                service=service,
                synthetic_job=settings.synthetic_job,
            )

    @property
    def in_process(self) -> bool:
        """True when the endpoints compute from this process's own windows."""
        return self.in_process_source is not None

    def record_check(self, outcome: CheckResult) -> None:
        """A synthetic run in this process (the runner calls it in in-process mode)."""
        if self.in_process_source is not None:
            self.in_process_source.record_check(outcome)

    async def status(self) -> dict[str, Any]:
        values = await self.source.target_values(self.settings.p95_response_seconds)
        return status_document(self.settings, values, service=self.service, source=self.source.name)

    async def uptime(self) -> dict[str, Any]:
        lookback = self.settings.incident_lookback
        if isinstance(self.source, InProcessSource):
            data = await self.source.uptime(WINDOW_SECONDS[lookback])
        else:
            data = await self.source.uptime(lookback)
        return uptime_document(data, service=self.service, source=self.source.name, incident_lookback=lookback)

    async def status_endpoint(self, request: Any) -> Any:
        return await self._respond(self.status)

    async def uptime_endpoint(self, request: Any) -> Any:
        return await self._respond(self.uptime)

    async def _respond(self, build: Any) -> Any:
        from starlette.responses import JSONResponse

        try:
            return JSONResponse(await build(), headers=_NO_STORE)
        except PrometheusUnavailable as exc:
            return self._unavailable(str(exc))
        except Exception as exc:  # telemetry never turns into a stack trace for the caller
            log_exception_once("sla-endpoint", "otelkit: computing the SLA failed")
            return self._unavailable(describe_error(exc))

    def _unavailable(self, reason: str) -> Any:
        from starlette.responses import JSONResponse

        body = {"status": "unavailable", "service": self.service, "source": self.source.name, "error": reason}
        return JSONResponse(body, status_code=503, headers=_NO_STORE)
