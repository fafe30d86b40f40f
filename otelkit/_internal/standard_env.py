"""Settings sources below ``OTELKIT_*``: the OpenTelemetry standard variables and secret files.

They exist so a service already configured the OTel way (``OTEL_SERVICE_NAME``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` ...) or the Docker-secrets way needs no new variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

# (variable, settings path, converter). Milliseconds become seconds as the OTel spec defines them.
STANDARD_VARIABLES: tuple[tuple[str, tuple[str, str], Any], ...] = (
    ("OTEL_SERVICE_NAME", ("service", "name"), str),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", ("otlp", "endpoint"), str),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", ("otlp", "protocol"), str),
    ("OTEL_EXPORTER_OTLP_HEADERS", ("otlp", "headers"), str),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", ("otlp", "timeout_seconds"), lambda ms: float(ms) / 1000),
    ("OTEL_METRIC_EXPORT_INTERVAL", ("otlp", "export_interval_seconds"), lambda ms: float(ms) / 1000),
)
# OTEL_RESOURCE_ATTRIBUTES keys that are otelkit settings, so explicit settings still win over them.
RESOURCE_KEYS: dict[str, tuple[str, str]] = {
    "service.name": ("service", "name"),
    "service.version": ("service", "version"),
    "deployment.environment.name": ("service", "environment"),
    "deployment.environment": ("service", "environment"),
}
# Files in the secrets directory, named as the spec's list of required secrets names them.
SECRET_FILES: dict[str, tuple[str, str]] = {
    "sentry_dsn": ("sentry", "dsn"),
    "otlp_headers": ("otlp", "headers"),
}


def secrets_dir() -> Path:
    """Where secret files are read from: ``OTELKIT_SECRETS_DIR``, by default Docker's ``/run/secrets``."""
    return Path(os.environ.get("OTELKIT_SECRETS_DIR", "/run/secrets"))


def _put(target: dict[str, Any], path: tuple[str, str], value: Any) -> None:
    target.setdefault(path[0], {}).setdefault(path[1], value)


def parse_resource_attributes(raw: str) -> dict[str, str]:
    """Parse ``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``) as the SDK does.

    Values are percent-decoded (``team=pay%2Cments`` is ``pay,ments``) and malformed items skipped,
    so the settings agree with the resource the SDK builds from the same variable.
    """
    attributes: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    return attributes


class _DictSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the nested dict directly


class StandardOtelEnvSource(_DictSource):
    """Reads the OTel SDK's own environment variables."""

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for variable, path, convert in STANDARD_VARIABLES:
            raw = os.environ.get(variable)
            if raw:
                try:
                    _put(values, path, convert(raw))
                except ValueError:
                    _put(values, path, raw)  # let validation report the bad value
        resource = parse_resource_attributes(os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        for key, path in RESOURCE_KEYS.items():
            if key in resource:
                _put(values, path, resource[key])
        return values


class SecretFilesSource(_DictSource):
    """Reads secrets mounted as files, never echoing their content."""

    def __init__(self, settings_cls: type, secrets_dir: Path) -> None:
        super().__init__(settings_cls)
        self.secrets_dir = secrets_dir

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if not self.secrets_dir.is_dir():
            return values
        for name, path in SECRET_FILES.items():
            file = self.secrets_dir / name
            if file.is_file():
                _put(values, path, file.read_text(encoding="utf-8").strip())
        return values
