"""Typed settings, read from arguments, ``OTELKIT_*`` variables, standard ``OTEL_*`` variables
and secret files, in that order of precedence.

Nested sections use ``__``: ``OTELKIT_PROMETHEUS__METRICS_PATH=/metrics``,
``OTELKIT_SENTRY__TRACES_SAMPLE_RATE=0.2``. Secret values may instead live in files
under ``OTELKIT_SECRETS_DIR`` (default ``/run/secrets``, the Docker/Compose convention):
``sentry_dsn`` and ``otlp_headers``.

    >>> OtelkitSettings(service={"name": "checkout"}).service.name
    'checkout'
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from otelkit._internal.env_source import OtelkitEnvSource
from otelkit._internal.standard_env import SecretFilesSource, StandardOtelEnvSource, secrets_dir

DEFAULT_BUCKETS: list[float] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
]
SLA_LATENCY_BOUNDARY_SECONDS = 0.5
"""The SLA's P95 target (500 ms) needs an exact bucket boundary, or its queries interpolate."""


def _parse_headers(value: Any) -> Any:
    """Accept OTEL-style ``k1=v1,k2=v2`` strings as well as mappings.

    Names and values are percent-decoded and names lower-cased, as the SDK's
    ``parse_env_headers`` does: ``authorization=Bearer%20abc`` sends ``Bearer abc``.
    """
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected comma-separated key=value pairs")
        pairs[unquote(key).strip().lower()] = unquote(val).strip()
    return pairs


class ServiceSettings(BaseModel):
    """Who is emitting: becomes the resource, Prometheus's ``job``, Sentry's release/environment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("unknown_service", min_length=1)
    version: str = "0.0.0"
    environment: str = "development"


class _EnvSection(BaseSettings):
    """A spec section that is a ``BaseSettings`` of its own, reading the environment as the whole does."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, OtelkitEnvSource(settings_cls))


class PrometheusSettings(_EnvSection):
    """The spec's Prometheus section, field for field."""

    model_config = SettingsConfigDict(env_prefix="OTELKIT_PROMETHEUS__", extra="forbid")

    enabled: bool = True
    metrics_path: str = "/metrics"
    excluded_handlers: list[str] = ["/metrics", "/health", "/docs", "/redoc"]
    default_buckets: list[float] = Field(default_factory=lambda: list(DEFAULT_BUCKETS))

    @field_validator("metrics_path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("default_buckets")
    @classmethod
    def _buckets_are_usable(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("must list at least one bucket boundary")
        if any(b <= 0 for b in value):
            raise ValueError("boundaries are seconds and must be positive")
        if any(later <= earlier for earlier, later in itertools.pairwise(value)):
            raise ValueError("boundaries must be strictly ascending")
        if SLA_LATENCY_BOUNDARY_SECONDS not in value:
            raise ValueError("must contain 0.5: the SLA's P95 <= 500 ms target is computed at that boundary")
        return value


class SentrySettings(_EnvSection):
    """The spec's Sentry section, field for field (privacy options live in `SentryPrivacySettings`)."""

    model_config = SettingsConfigDict(env_prefix="OTELKIT_SENTRY__", extra="forbid")

    enabled: bool = True
    dsn: SecretStr | None = None
    environment: str | None = None
    sample_rate: float = Field(1.0, ge=0.0, le=1.0)
    enable_tracing: bool = True
    traces_sample_rate: float = Field(0.1, ge=0.0, le=1.0)

    @field_validator("dsn")
    @classmethod
    def _dsn_is_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        project = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username:
            raise ValueError("must look like https://<public key>@<host>/<project id>")
        if not project.isdigit():
            raise ValueError("must end with the numeric project id: https://<public key>@<host>/<project id>")
        return value


class SentryPrivacySettings(BaseModel):
    """What otelkit strips from Sentry events and spans before they leave the process.

    Its own section, so the spec's Sentry section keeps exactly the spec's fields.
    """

    model_config = ConfigDict(extra="forbid")

    send_default_pii: bool = False
    """Off: client IP addresses (span ``client.address``, ``X-Forwarded-For``) never leave the process."""
    scrub_fields: list[str] = Field(default_factory=list)
    """Regular expressions for more field names whose values are replaced (beyond password, token ...)."""
    scrub_values: list[str] = Field(default_factory=list)
    """Regular expressions for more values replaced wherever they appear (beyond card numbers)."""

    @field_validator("scrub_fields", "scrub_values")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return value


class OtlpSettings(BaseModel):
    """Push export to an OpenTelemetry Collector. Off while ``endpoint`` is unset."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = None
    protocol: Literal["grpc", "http/protobuf"] = "grpc"
    headers: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    export_interval_seconds: float = Field(10.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    max_request_bytes: int = Field(4_000_000, ge=4096)
    """Largest span export request: a bigger batch goes out in parts, and a span bigger on its own
    is left out and counted. A receiver refuses a larger request whole; gRPC servers, the
    collector's gRPC receiver included, take at most 4 MiB (4 194 304 bytes) unless configured
    otherwise (its HTTP receiver: 20 MiB). Below that, so that a span otelkit sends also fits the
    collector's own requests to a backend (split at 4 100 000 bytes, collector/config.traces-otlp.yaml)."""
    metrics: bool = True
    traces: bool = True

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:4317")
        return value.rstrip("/")

    _split_headers = field_validator("headers", mode="before")(_parse_headers)


class TracingSettings(BaseModel):
    """Trace pipeline: one ratio sampler, a bounded export queue."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)
    max_queue_size: int = Field(2048, ge=1)
    max_export_batch_size: int = Field(512, ge=1)


class MetricsSettings(BaseModel):
    """Metric pipeline knobs that are not part of the spec's Prometheus section."""

    model_config = ConfigDict(extra="forbid")

    cardinality_limit: int = Field(2000, ge=1)
    """Distinct attribute sets per metric; further ones fold into ``otel_metric_overflow="true"``."""
    histogram_aggregation: Literal["explicit", "exponential"] = "explicit"
    system_metrics: bool = True
    sdk_self_metrics: bool = True
    """The SDK's own ``otel_sdk_*`` metrics for span export: spans dropped on a full queue, failed exports."""


class HttpSettings(BaseModel):
    """HTTP server instrumentation (FastAPI/Starlette)."""

    model_config = ConfigDict(extra="forbid")

    status_label: Literal["code", "class"] = "code"
    """``status="404"`` (exact code) or ``status="4xx"`` (class: fewer series, coarser alerts)."""
    tracer: Literal["otelkit", "opentelemetry-instrumentation"] = "otelkit"
    """Who makes the request spans: otelkit's lean middleware, or opentelemetry-instrumentation-fastapi."""
    library_metrics: bool = False
    """With the library tracer, also keep its ``http.server.*`` metrics (they duplicate the spec's)."""
    measure_own_endpoints: bool = False
    """Also count otelkit's own endpoints (``/health/detailed``, ``/sla/status``, ``/sla/uptime`` ...) in the
    HTTP metrics and traces, labelled with their path. Off by default: like ``/metrics`` and ``/health``
    they are not the service's traffic, and a dashboard polling ``/sla/status`` while Prometheus is down
    (a 503) must not raise the service's error rate."""

    @field_validator("library_metrics")
    @classmethod
    def _only_with_the_library_tracer(cls, keep: bool, info: ValidationInfo) -> bool:
        if keep and info.data.get("tracer") != "opentelemetry-instrumentation":
            raise ValueError(
                "the http.server.* metrics come from opentelemetry-instrumentation-fastapi; "
                "set tracer to 'opentelemetry-instrumentation' too, or leave library_metrics off"
            )
        return keep


class HealthSettings(BaseModel):
    """The ``/health`` (liveness) and ``/health/detailed`` (readiness) endpoints."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    path: str = "/health"
    detailed_path: str = "/health/detailed"
    timeout_seconds: float = Field(2.0, gt=0)
    """Per dependency check: a hung database cannot hang the endpoint."""


class SlaSettings(BaseModel):
    """SLA targets (the spec's defaults) and where ``/sla/status`` and ``/sla/uptime`` read from.

    Without ``prometheus_url`` the endpoints compute from this process's own rolling windows;
    with it they read the SLA recording rules from Prometheus (every instance of the service).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    status_path: str = "/sla/status"
    uptime_path: str = "/sla/uptime"
    availability: float = Field(0.995, gt=0, lt=1)
    """Target: at least this share of requests answered without a server error (>=)."""
    error_rate: float = Field(0.01, gt=0, lt=1)
    """Target: at most this share of requests answered with a 5xx (<=, the spec's "Error Rate: ≤1%")."""
    average_response_seconds: float = Field(1.0, gt=0)
    """Target: mean response time below this (<)."""
    p95_response_seconds: float = Field(0.5, gt=0)
    """Target: 95th percentile response time at most this (<=); 0.5 is a bucket boundary, so it is exact."""
    compliance_window: Literal["1h", "1d", "7d", "30d"] = "1d"
    """The window whose values decide compliance and the error budget: a rolling day by default, the
    window ServiceSLAViolated judges (stack/prometheus/rules_config.py ``sla_window``); every window is
    reported beside it, 30d for the monthly view."""
    incident_lookback: Literal["1h", "1d", "7d"] = "1d"
    """How far back ``/sla/uptime`` lists incidents (down intervals of synthetic checks)."""
    prometheus_url: str | None = None
    prometheus_timeout_seconds: float = Field(5.0, gt=0)
    synthetic_job: str = Field("otelkit-synthetic", min_length=1)
    """The Prometheus ``job`` of the synthetic runner whose checks ``/sla/uptime`` reports (Prometheus mode)."""

    @field_validator("status_path", "uptime_path")
    @classmethod
    def _sla_path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url_is_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. http://prometheus:9090")
        return value.rstrip("/")


class OtelkitSettings(BaseSettings):
    """Everything `otelkit.init()` needs; every field has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="OTELKIT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    sentry: SentrySettings = Field(default_factory=SentrySettings)
    sentry_privacy: SentryPrivacySettings = Field(default_factory=SentryPrivacySettings)
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            OtelkitEnvSource(settings_cls),
            StandardOtelEnvSource(settings_cls),
            SecretFilesSource(settings_cls, secrets_dir()),
        )


__all__ = [
    "DEFAULT_BUCKETS",
    "HealthSettings",
    "HttpSettings",
    "MetricsSettings",
    "OtelkitSettings",
    "OtlpSettings",
    "PrometheusSettings",
    "SentryPrivacySettings",
    "SentrySettings",
    "ServiceSettings",
    "SlaSettings",
    "TracingSettings",
]
