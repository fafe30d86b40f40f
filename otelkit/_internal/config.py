"""Turn arguments and the environment into validated settings, or one clear error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from otelkit._internal.standard_env import ALTERNATIVE_SOURCES
from otelkit.errors import OtelkitConfigError
from otelkit.settings import OtelkitSettings

_SECRET_PATHS = {("sentry", "dsn"), ("otlp", "headers")}


def load_settings(settings: OtelkitSettings | None, overrides: dict[str, Any]) -> OtelkitSettings:
    """Build settings; a validation failure becomes an `OtelkitConfigError` naming each variable."""
    try:
        if settings is None:
            return OtelkitSettings(**overrides)
        if not overrides:
            return settings
        merged = _deep_merge(settings.model_dump(), _dump(overrides))
        return OtelkitSettings.model_validate(merged)
    except ValidationError as exc:
        raise OtelkitConfigError(_describe(exc)) from None


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, dict):
        return {key: _dump(item) for key, item in value.items()}
    return value


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def env_variable(loc: tuple[str | int, ...]) -> str:
    """The ``OTELKIT_*`` variable that sets the field at ``loc``."""
    names = [str(part) for part in loc if isinstance(part, str)]
    return "OTELKIT_" + "__".join(names).upper()


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        dotted = ".".join(str(part) for part in loc)
        section_field = tuple(str(part) for part in loc[:2])
        value = "<redacted>" if section_field in _SECRET_PATHS else repr(error.get("input"))
        where = env_variable(loc[:2] if section_field in _SECRET_PATHS else loc)
        if section_field in ALTERNATIVE_SOURCES:
            where += f" or {ALTERNATIVE_SOURCES[section_field]}"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"setting {dotted} ({where}) = {value}: {message}")
    count = len(lines)
    header = f"otelkit.init(): {count} invalid setting{'s' if count > 1 else ''}"
    return header + "\n  " + "\n  ".join(lines)
