"""Read a checks file (YAML or JSON) into validated `Check` objects, or one error naming every mistake.

The file::

    base_url: ${env:SYNTHETIC_BASE_URL}      # joined to every URL that starts with "/"
    defaults: {interval_seconds: 30, timeout_seconds: 5, jitter: 0.1, headers: {User-Agent: otelkit-synthetic}}
    checks:
      - name: api-health
        url: /health
        expect: {status: 200, json: {$.status: ok}}

Each error names the file, the check and the field, and the rejected value (header values are
shown as ``<redacted>``: they carry secrets).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from otelkit.errors import OtelkitConfigError
from otelkit.synthetic.model import STEP_FIELDS, Check
from otelkit.synthetic.templates import TemplateError, resolve_secrets

INSTALL_EXTRA = "pip install 'otelkit[synthetic]'"
"""What installs the packages the runner needs beyond otelkit's own (httpx, PyYAML)."""

FILE_FIELDS = {"base_url", "defaults", "checks"}
DEFAULT_FIELDS = {"interval_seconds", "timeout_seconds", "jitter", "latency_budget_ms", "headers"}


def load_checks(path: str | Path, *, base_url: str | None = None) -> list[Check]:
    """The checks of a ``.yaml``/``.yml``/``.json`` file; ``base_url`` overrides the file's."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise OtelkitConfigError(f"checks file {path}: cannot read it: {exc.strerror or exc}") from None
    if path.suffix in (".yaml", ".yml"):
        yaml = _yaml()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OtelkitConfigError(f"checks file {path}: not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise OtelkitConfigError(f"checks file {path}: not valid JSON: {exc}") from None
    return checks_from_data(data, source=str(path), base_url=base_url)


def checks_from_data(data: Any, *, source: str = "<checks>", base_url: str | None = None) -> list[Check]:
    """Validate already-parsed checks (the file's structure as Python objects)."""
    if not isinstance(data, Mapping):
        raise OtelkitConfigError(f"checks file {source}: expected a mapping with 'checks', got {type(data).__name__}")
    errors: list[str] = []
    unknown = sorted(set(data) - FILE_FIELDS)
    if unknown:
        errors.append(f"unknown top-level field(s) {unknown} (allowed: {sorted(FILE_FIELDS)})")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        errors.append(f"field defaults = {defaults!r}: must be a mapping")
        defaults = {}
    bad_defaults = sorted(set(defaults) - DEFAULT_FIELDS)
    if bad_defaults:
        errors.append(f"defaults: unknown field(s) {bad_defaults} (allowed: {sorted(DEFAULT_FIELDS)})")
    root: str | None = None
    default_headers: dict[str, str] = {}
    try:
        root = resolve_secrets(base_url if base_url is not None else data.get("base_url"))
    except TemplateError as exc:
        errors.append(f"base_url: {exc}")
    try:
        default_headers = resolve_secrets(dict(defaults.get("headers") or {}))
    except TemplateError as exc:
        errors.append(f"defaults.headers: {exc}")
    raw_checks = data.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        errors.append("field checks: must be a non-empty list of checks")
        raw_checks = []
    checks: list[Check] = []
    names: set[object] = set()
    for position, raw in enumerate(raw_checks):
        label = f"check #{position + 1}"
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
            label = f"check {raw['name']!r}"
        check, problems = _one_check(raw, defaults, default_headers, root)
        errors.extend(f"{label}: {problem}" for problem in problems)
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if isinstance(name, str) and name in names:
            errors.append(f"{label}: field name = {name!r}: another check already has this name")
        names.add(name)
        if check is not None:
            checks.append(check)
    if errors:
        count = len(errors)
        header = f"checks file {source}: {count} error{'s' if count > 1 else ''}"
        raise OtelkitConfigError(header + "\n  " + "\n  ".join(errors))
    return checks


def _one_check(
    raw: Any, defaults: Mapping[str, Any], default_headers: dict[str, str], base_url: str | None
) -> tuple[Check | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"must be a mapping, got {type(raw).__name__}"]
    shorthand = "steps" not in raw and any(key in raw for key in STEP_FIELDS)
    merged: dict[str, Any] = {key: value for key, value in defaults.items() if key != "headers"}
    merged.update(raw)
    try:
        merged = resolve_secrets(merged)
    except TemplateError as exc:
        return None, [str(exc)]
    steps = [merged] if shorthand else merged.get("steps")
    if isinstance(steps, list):
        for step in steps:
            if isinstance(step, dict):
                if default_headers:
                    step["headers"] = {**default_headers, **(step.get("headers") or {})}
                url = step.get("url")
                if isinstance(url, str) and url.startswith("/") and base_url:
                    step["url"] = base_url.rstrip("/") + url
    try:
        return Check.model_validate(merged), []
    except ValidationError as exc:
        return None, list(_describe(exc, shorthand, raw))


def _describe(exc: ValidationError, shorthand: bool, raw: Mapping[str, Any]) -> Iterable[str]:
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if shorthand and loc[:2] == ("steps", 0):
            loc = loc[2:]
        field = _dotted(loc) or "(check)"
        given = error.get("input")
        if "headers" in loc:
            value = "<redacted>"  # header values carry secrets
        elif not loc or error["type"] == "missing" or isinstance(given, Mapping | list):
            value = ""  # the whole check or step: too long to repeat, and it may hold headers
        else:
            value = repr(given)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        yield f"field {field}{' = ' + value if value else ''}: {message}"


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise OtelkitConfigError(
            f"reading a YAML checks file needs PyYAML: {INSTALL_EXTRA} (or write the checks as JSON)"
        ) from None
    return yaml
