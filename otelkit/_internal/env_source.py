"""The ``OTELKIT_*`` environment source, and where each setting's value came from.

pydantic-settings' own source only takes JSON for list and section variables and, when a value
is not JSON, fails naming neither the variable nor the value. This one also takes the way people
write lists (``OTELKIT_PROMETHEUS__DEFAULT_BUCKETS=0.1,0.5,1``) and reports undecodable values
by variable. `setting_origin` lets error messages show the variable actually set and its raw
value, not the converted one.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, NoDecode, SettingsError

from otelkit._internal.standard_env import RESOURCE_KEYS, SECRET_FILES, STANDARD_VARIABLES
from otelkit.errors import OtelkitConfigError

PREFIX = "OTELKIT_"
DELIMITER = "__"


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from: a variable (with its raw text) or a secret file."""

    source: str
    raw: str | None
    """The text as set; ``None`` for secret files, whose content is never shown."""


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list or annotation is list


def _decodes(field: FieldInfo) -> bool:
    """Whether pydantic-settings would JSON-decode this field's variable."""
    if NoDecode in field.metadata:
        return False
    annotation = field.annotation
    origin = typing.get_origin(annotation)
    return origin in (list, dict) or (isinstance(annotation, type) and issubclass(annotation, BaseModel))


def _comma_separated(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class OtelkitEnvSource(EnvSettingsSource):
    """pydantic-settings' env source; lists may be ``a,b,c``; undecodable values are named."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if field is not None and _is_list(field.annotation) and not str(value).lstrip().startswith("["):
            return _comma_separated(str(value))
        return super().decode_complex_value(field_name, field, value)

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError:
            problems = [
                f"{name}={'<redacted>' if _may_hold_a_secret(name) else repr(raw)}: {reason}"
                for name, raw, reason in self._undecodable()
            ]
            if not problems:
                raise
            count = len(problems)
            header = f"otelkit settings: {count} invalid environment variable{'s' if count > 1 else ''}"
            raise OtelkitConfigError(header + "\n  " + "\n  ".join(problems)) from None

    def _undecodable(self) -> Iterator[tuple[str, str, str]]:
        """Each prefixed variable whose value cannot be decoded for its field, with the reason."""
        prefix = self.env_prefix.upper()
        for name, raw in os.environ.items():
            if not name.upper().startswith(prefix):
                continue
            field = _field_at(self.settings_cls.model_fields, name.upper()[len(prefix) :].split(DELIMITER))
            if field is None or not _decodes(field):
                continue
            try:
                self.decode_complex_value(name, field, raw)
            except ValueError as exc:
                expected = "a JSON array or comma-separated items" if _is_list(field.annotation) else "a JSON object"
                yield name, raw, f"expected {expected} ({exc})"


SECRET_PATHS = {("sentry", "dsn"), ("otlp", "headers")}
"""Settings whose values are never shown in messages."""


def _may_hold_a_secret(variable: str) -> bool:
    """A secret field's variable, or a whole section's that holds one (``OTELKIT_OTLP='{...}'``)."""
    parts = tuple(part.lower() for part in variable.upper()[len(PREFIX) :].split(DELIMITER))
    return any(parts == path[: len(parts)] for path in SECRET_PATHS)


def _field_at(fields: Mapping[str, FieldInfo], parts: list[str]) -> FieldInfo | None:
    """The field a variable's name (split at ``__``) points to, or ``None`` for unknown names."""
    field = fields.get(parts[0].lower())
    for part in parts[1:]:
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        field = annotation.model_fields.get(part.lower())
    return field


def setting_origin(section: str, field: str, secrets_dir: Path) -> Origin | None:
    """The variable or file that sets ``section.field``, in the settings' order of precedence.

    ``None`` when nothing in the environment sets it (an argument or the default does).
    """
    environ = {name.upper(): (name, value) for name, value in os.environ.items()}
    field_variable = f"{PREFIX}{section}{DELIMITER}{field}".upper()
    if field_variable in environ:
        return Origin(*environ[field_variable])
    section_variable = f"{PREFIX}{section}".upper()
    if section_variable in environ:
        name, raw = environ[section_variable]
        value = _section_json_value(raw, field)
        if value is not None:  # the field's own value: the section may hold secrets beside it
            return Origin(f"{name}, field {field!r}", value)
    for variable, path, _ in STANDARD_VARIABLES:
        if path == (section, field) and os.environ.get(variable):
            return Origin(variable, os.environ[variable])
    resource_keys = [key for key, path in RESOURCE_KEYS.items() if path == (section, field)]
    raw_resource = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    pairs = [pair.strip() for pair in raw_resource.split(",")]
    for key in resource_keys:
        for pair in pairs:
            if pair.startswith(f"{key}="):
                return Origin(f"OTEL_RESOURCE_ATTRIBUTES, key {key!r}", pair[len(key) + 1 :])
    for name, path in SECRET_FILES.items():
        if path == (section, field) and (secrets_dir / name).is_file():
            return Origin(f"file '{name}' in OTELKIT_SECRETS_DIR ({secrets_dir})", None)
    return None


def _section_json_value(raw: str, field: str) -> str | None:
    """The JSON text of ``field`` in a whole-section variable such as ``OTELKIT_SERVICE='{"name": ...}'``,
    or ``None`` when the variable does not set it."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(decoded, dict) or field not in decoded:
        return None
    return json.dumps(decoded[field])
