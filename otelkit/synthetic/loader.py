"""Read a checks file (YAML or JSON) into validated `Check` objects, or one error naming every mistake.

The file::

    base_url: ${env:SYNTHETIC_BASE_URL}      # joined to every URL that starts with "/"
    defaults: {interval_seconds: 30, timeout_seconds: 5, jitter: 0.1, headers: {User-Agent: otelkit-synthetic}}
    checks:
      - name: api-health
        url: /health
        expect: {status: 200, json: {$.status: ok}}

Each error names the file, the check and the field, and the rejected value as the file writes it
(``${env:...}`` unresolved; header values, a URL's query values and password as ``<redacted>``:
they carry secrets). A bad default is reported once as ``defaults.<field>``, a bad base URL as
``base_url``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from otelkit.errors import OtelkitConfigError
from otelkit.synthetic.model import STEP_FIELDS, Check, validate_url
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
    raw_checks = data.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        errors.append("field checks: must be a non-empty list of checks")
        raw_checks = []
    root, root_problems = _base_url(base_url if base_url is not None else data.get("base_url"))
    errors.extend(root_problems)
    default_headers: dict[str, str] = {}
    try:
        default_headers = resolve_secrets(dict(defaults.get("headers") or {}))
    except TemplateError as exc:
        errors.append(f"defaults.headers: {exc}")
    good_defaults, default_problems = _defaults(defaults, raw_checks)
    errors.extend(default_problems)
    checks: list[Check] = []
    names: set[object] = set()
    for position, raw in enumerate(raw_checks):
        label = f"check #{position + 1}"
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
            label = f"check {raw['name']!r}"
        check, problems = _one_check(raw, good_defaults, default_headers, root)
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


_UNUSABLE_BASE = "http://base-url.invalid"
"""Stands in for a base_url already reported, so each check's relative URL is not reported again."""


def _base_url(raw: Any) -> tuple[str | None, list[str]]:
    """The resolved ``base_url`` and what is wrong with it, reported once as ``base_url``."""
    if raw is None:
        return None, []
    try:
        root = resolve_secrets(raw)
    except TemplateError as exc:
        return _UNUSABLE_BASE, [f"base_url: {exc}"]
    if not isinstance(root, str):
        return _UNUSABLE_BASE, [f"field base_url = {raw!r}: must be a URL"]
    try:
        validate_url(root.rstrip("/") + "/")
    except ValueError as exc:
        message = str(exc).removesuffix(" (a path like /health needs base_url)")
        return _UNUSABLE_BASE, [_redacted(f"field base_url = {_shown(raw, url=True)}: {message}", raw)]
    return root, []


def _defaults(defaults: Mapping[str, Any], raw_checks: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """The valid ``defaults`` (headers aside), and each bad one reported once as ``defaults.<field>``,
    naming the checks that would inherit it (those that do not set the field themselves)."""
    values = {key: value for key, value in defaults.items() if key in DEFAULT_FIELDS and key != "headers"}
    if not values:
        return {}, []
    try:
        resolved = resolve_secrets(values)
    except TemplateError as exc:
        return {}, [f"defaults: {exc}"]
    try:
        Check.model_validate({"name": "defaults", "url": "http://defaults.invalid/", **resolved})
        return resolved, []
    except ValidationError as exc:
        problems, bad = [], set()
        for error in exc.errors(include_url=False):
            field = error["loc"][0] if error["loc"] else ""
            if field not in values:
                continue
            bad.add(field)
            heirs = [
                repr(raw["name"])
                for raw in raw_checks
                if isinstance(raw, Mapping) and field not in raw and isinstance(raw.get("name"), str)
            ]
            inherited = f"inherited by check(s) {', '.join(heirs)}" if heirs else "no check inherits it"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"field defaults.{field} = {_shown(values[field])}: {message} ({inherited})")
        return {key: value for key, value in resolved.items() if key not in bad}, problems


def _one_check(
    raw: Any, defaults: Mapping[str, Any], default_headers: dict[str, str], base_url: str | None
) -> tuple[Check | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"must be a mapping, got {type(raw).__name__}"]
    shorthand = "steps" not in raw and any(key in raw for key in STEP_FIELDS)
    merged: dict[str, Any] = dict(defaults)
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
        written = _written(raw, loc)
        if "headers" in loc:
            value = "<redacted>"  # header values carry secrets
        elif not loc or error["type"] == "missing" or isinstance(given, Mapping | list):
            value = ""  # the whole check or step: too long to repeat, and it may hold headers
        else:
            # as the file has it: ${env:...} and ${file:...} unresolved, a URL's query and password hidden
            value = _shown(written if written is not None else given, url=loc[-1] == "url")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        yield _redacted(f"field {field}{' = ' + value if value else ''}: {message}", written)


def _written(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> Any:
    """The value at ``loc`` as the check in the file wrote it, or None (a default, or not there)."""
    node: Any = raw
    for part in loc:
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return None
        node = node[part]
    return node


_URL_SECRETS = re.compile(r"(?P<keep>[?&;][^=&#;]*=|//[^/:@]*:)(?P<secret>[^&#;@/]*)(?P<end>@?)")


def _shown(value: Any, *, url: bool = False) -> str:
    """``repr(value)``; for a URL, with query values and the password replaced by ``<redacted>``."""
    if url and isinstance(value, str):

        def hide(match: re.Match[str]) -> str:
            if match.group("keep").startswith("//") and not match.group("end"):
                return match.group(0)  # //host:port, not //user:password@
            return f"{match.group('keep')}<redacted>{match.group('end')}"

        value = _URL_SECRETS.sub(hide, value)
    return repr(value)


def _redacted(line: str, written: Any) -> str:
    """``line`` without the values ``${env:...}``/``${file:...}`` resolved to (a message may quote them)."""
    for secret in _secret_values(written):
        line = line.replace(secret, "<redacted>")
    return line


SECRET = re.compile(r"\$\{(?:env|file):[^}]*\}")


def _secret_values(written: Any) -> list[str]:
    """What each secret placeholder in ``written`` resolves to (longest first), to keep out of messages."""
    if not isinstance(written, str):
        return []
    values = []
    for placeholder in SECRET.findall(written):
        try:
            values.append(resolve_secrets(placeholder))
        except TemplateError:
            continue
    return sorted((value for value in values if value), key=len, reverse=True)


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
