"""``${...}`` placeholders in check definitions: secrets resolved at load, variables at run time.

- ``${env:NAME}``: the environment variable (a missing one is a load error, never an empty header);
- ``${file:/run/secrets/token}``: the file's content without its trailing newline;
- ``${name}``: a variable an earlier step of the same check extracted from its response.

Secrets are resolved once, when the file loads, so a missing one stops the runner at start-up
instead of failing every run; a rotated secret needs a restart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateError(ValueError):
    """A placeholder that cannot be resolved (missing variable, unreadable file, bad syntax)."""


def resolve_secrets(value: Any) -> Any:
    """Replace ``${env:...}`` and ``${file:...}`` in every string of ``value`` (nested too)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(_secret, value)
    if isinstance(value, list):
        return [resolve_secrets(item) for item in value]
    if isinstance(value, dict):
        return {key: resolve_secrets(item) for key, item in value.items()}
    return value


def _secret(match: re.Match[str]) -> str:
    kind, sep, argument = match.group(1).partition(":")
    if not sep:
        if not VARIABLE_NAME.fullmatch(kind):
            raise TemplateError(f"placeholder ${{{kind}}} is neither ${{env:NAME}}, ${{file:PATH}} nor ${{variable}}")
        return match.group(0)  # a run-time variable: left for `render`
    if kind == "env":
        if argument not in os.environ:
            raise TemplateError(f"environment variable {argument} (from ${{env:{argument}}}) is not set")
        return os.environ[argument]
    if kind == "file":
        try:
            return Path(argument).read_text().rstrip("\r\n")
        except OSError as exc:
            raise TemplateError(f"cannot read ${{file:{argument}}}: {exc.strerror or exc}") from None
    raise TemplateError(f"unknown placeholder kind {kind!r} in ${{{match.group(1)}}} (use env: or file:)")


def variables_used(value: Any) -> set[str]:
    """Run-time variable names ``${name}`` appearing in ``value`` (after secrets are resolved)."""
    if isinstance(value, str):
        return {name for name in PLACEHOLDER.findall(value) if VARIABLE_NAME.fullmatch(name)}
    if isinstance(value, list):
        return set().union(*(variables_used(item) for item in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(variables_used(item) for item in value.values())) if value else set()
    return set()


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Substitute run-time variables; a string that is exactly ``${name}`` keeps the value's type."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole is not None and whole.group(1) in variables:
            return variables[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render(item, variables) for key, item in value.items()}
    return value
