"""One sampling decision for OpenTelemetry and Sentry.

Sentry receives the spans otelkit's OpenTelemetry pipeline records, so there is one sampler,
``ParentBased(TraceIdRatioBased(ratio))``, and this module picks its ratio: while spans go to
Sentry, ``sentry.traces_sample_rate`` (the spec's Sentry setting, default 0.1) is that ratio,
and the collector and Sentry receive exactly the same traces; otherwise ``tracing.sample_ratio``
is. A ``tracing.sample_ratio`` changed from its default to a different value than the Sentry
rate would be a second opinion about the same requests, so `check_one_ratio` refuses it.
"""

from __future__ import annotations

from otelkit.errors import OtelkitConfigError
from otelkit.settings import OtelkitSettings, TracingSettings

DEFAULT_TRACING_RATIO: float = TracingSettings.model_fields["sample_ratio"].default


def spans_go_to_sentry(settings: OtelkitSettings) -> bool:
    """Whether a started Sentry also receives spans (both tracing switches on)."""
    return settings.tracing.enabled and settings.sentry.enable_tracing


def trace_sample_ratio(settings: OtelkitSettings, sentry_started: bool) -> float:
    """The ratio of the one root sampler; 0 with tracing off."""
    if not settings.tracing.enabled:
        return 0.0
    if sentry_started and spans_go_to_sentry(settings):
        return settings.sentry.traces_sample_rate
    return settings.tracing.sample_ratio


def check_one_ratio(settings: OtelkitSettings) -> None:
    """Raise when both ratios were set and disagree; call only when spans will go to Sentry."""
    tracing_ratio = settings.tracing.sample_ratio
    sentry_rate = settings.sentry.traces_sample_rate
    if tracing_ratio != DEFAULT_TRACING_RATIO and tracing_ratio != sentry_rate:
        raise OtelkitConfigError(
            f"setting tracing.sample_ratio (OTELKIT_TRACING__SAMPLE_RATIO) = {tracing_ratio!r} disagrees with "
            f"sentry.traces_sample_rate (OTELKIT_SENTRY__TRACES_SAMPLE_RATE) = {sentry_rate!r}: with Sentry on, "
            "one sampler decides for the collector and Sentry alike and its ratio is "
            "OTELKIT_SENTRY__TRACES_SAMPLE_RATE; set only that one (or both to the same value)"
        )


__all__ = ["check_one_ratio", "spans_go_to_sentry", "trace_sample_ratio"]
