"""Process-wide otelkit state: the active handle, and the pytest capture when one is active."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import SpanProcessor

from otelkit._internal.overflow import OverflowWarner

if TYPE_CHECKING:
    from otelkit.handle import Otelkit
    from otelkit.settings import OtelkitSettings


class CaptureHook(Protocol):
    """What `init()` needs from the pytest capture: in-memory sinks instead of network exporters."""

    def metric_reader(self, settings: OtelkitSettings, warner: OverflowWarner) -> MetricReader: ...

    def span_processor(self) -> SpanProcessor: ...

    def adopt(self, handle: Otelkit) -> None: ...


lock = threading.RLock()
current: Otelkit | None = None
capture: CaptureHook | None = None
