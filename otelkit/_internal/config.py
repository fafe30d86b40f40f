"""Turn arguments and the environment into validated settings, or one clear error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from otelkit._internal.env_source import SECRET_PATHS, setting_origin
from otelkit._internal.standard_env import secrets_dir
from otelkit.errors import OtelkitConfigError
from otelkit.settings import OtelkitSettings

_MOVED = {
    ("sentry", field): f"sentry_privacy.{field}" for field in ("send_default_pii", "scrub_fields", "scrub_values")
}
"""Settings that left a section: the error names where they went."""


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
        # With a settings object, every value was already valid: the arguments are to blame.
        read_environment = settings is None
        raise OtelkitConfigError(_describe(exc, _dump(overrides), read_environment)) from None


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


def _given(overrides: dict[str, Any], path: tuple[str, ...]) -> bool:
    value: Any = overrides
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _describe(exc: ValidationError, overrides: dict[str, Any], read_environment: bool) -> str:
    """One line per error: the setting, who set it (argument, variable or file), the value as given."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        dotted = ".".join(str(part) for part in loc)
        names = tuple(str(part) for part in loc if isinstance(part, str))
        secret = names[:2] in SECRET_PATHS
        origin = None
        if read_environment and len(names) >= 2 and not _given(overrides, names[:2]):
            origin = setting_origin(names[0], names[1], secrets_dir())
        if origin is not None:
            where = origin.source
            value = "<redacted>" if secret or origin.raw is None else repr(origin.raw)
        else:
            where = f"argument to otelkit.init(); variable {env_variable(loc[:2] if secret else loc)}"
            value = "<redacted>" if secret else repr(error.get("input"))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden" and names[:2] in _MOVED:
            message += f"; it moved to {_MOVED[names[:2]]} ({env_variable(tuple(_MOVED[names[:2]].split('.')))})"
        lines.append(f"setting {dotted} ({where}) = {value}: {message}")
    count = len(lines)
    header = f"otelkit.init(): {count} invalid setting{'s' if count > 1 else ''}"
    return header + "\n  " + "\n  ".join(lines)
