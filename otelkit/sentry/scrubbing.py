"""Replace secrets and personal data in everything otelkit sends to Sentry: events, breadcrumbs, spans.

Sentry is a third party, so what leaves for it is scrubbed in the process, before sending:
the values of fields *named like* a secret (``password``, ``user_password``, ``X-Api-Key``,
``sessionid`` ...), the secret parameters of query strings and of paths (``/reset/{token}``),
and strings that look like payment card numbers (13-19 digits passing the Luhn check, so
order numbers and timestamps survive). With ``send_default_pii`` off, client IP addresses go too.

    >>> Scrubber().scrub({"password": "hunter2", "query_string": "token=abc&page=2"})
    {'password': '[Filtered]', 'query_string': 'token=%5BFiltered%5D&page=2'}
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

FILTERED = "[Filtered]"
"""What Sentry's own scrubbers write, so scrubbed values look the same whoever replaced them."""

SECRET_NAME_PATTERNS: tuple[str, ...] = (
    r"passw(or)?d|pwd|passphrase",
    r"secret",
    r"token",
    r"api_?key",
    r"session",
    r"authori[sz]ation",
    r"cookie",
    r"credential",
    r"private_?key",
    r"csrf|xsrf",
)
"""Matched anywhere in a field name, lower-cased with ``-`` read as ``_``: ``Set-Cookie``, ``access_token``."""

PII_NAME_PATTERNS: tuple[str, ...] = (
    r"x_forwarded_for",
    r"x_real_ip",
    r"^forwarded$",
    r"remote_addr",
    r"^client\.address$",
    r"ip_address",
)
"""Client IP addresses: replaced unless ``send_default_pii`` is on."""

_CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])(?:[0-9a-f]{32}|[0-9a-f]{16})(?![0-9A-Za-z])")
"""A trace id (32) or span id (16) in lowercase hex with a letter, standing alone: its digit runs are no
card number (a Luhn-valid run inside a trace id made Sentry reject the event). A bare 16-digit number is
still a card candidate; ``%3D4111...`` has an uppercase letter: scrubbed."""
_HEX_ID_VALUE = re.compile(r"[0-9a-f]{32}|[0-9a-f]{16}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_KEYS = frozenset({"trace_id", "span_id", "parent_span_id", "event_id", "trace.id", "span.id"})
"""Keys whose values Sentry validates as hex ids: such a value, if it has an id's shape, is left whole."""
_QUERY_KEYS = frozenset({"query_string", "url.query", "http.query"})
_URL_KEYS = frozenset({"url", "url.full", "http.url"})
_PATH_PARAMETER = re.compile(r"^\{([^}:]+)(?::[^}]*)?\}$")


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number satisfies (and 90 % of other digit runs do not)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _replace_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return FILTERED if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


class Scrubber:
    """Scrubs nested data into a copy; the input is left alone. Field names are cached (bounded)."""

    def __init__(
        self,
        extra_field_patterns: Iterable[str] = (),
        extra_value_patterns: Iterable[str] = (),
        *,
        send_default_pii: bool = False,
    ) -> None:
        names = [*SECRET_NAME_PATTERNS, *extra_field_patterns]
        if not send_default_pii:
            names += PII_NAME_PATTERNS
        self._names = re.compile("|".join(f"(?:{p})" for p in names), re.IGNORECASE)
        extra = list(extra_value_patterns)
        self._extra_values = re.compile("|".join(f"(?:{p})" for p in extra)) if extra else None
        self.is_secret_name = functools.lru_cache(maxsize=4096)(self._is_secret_name)

    def _is_secret_name(self, name: str) -> bool:
        return self._names.search(name.lower().replace("-", "_")) is not None

    def scrub_text(self, text: str) -> str:
        """Card numbers and the configured value patterns, wherever they appear in ``text``."""
        if any(char.isdigit() for char in text):
            if _HEX_ID.search(text) is None:
                text = _CARD_CANDIDATE.sub(_replace_card, text)
            else:  # scrub around the ids, never inside one
                pieces = _HEX_ID.split(text)
                ids = _HEX_ID.findall(text)
                text = "".join(
                    _CARD_CANDIDATE.sub(_replace_card, piece) + (ids[index] if index < len(ids) else "")
                    for index, piece in enumerate(pieces)
                )
        if self._extra_values is not None:
            text = self._extra_values.sub(FILTERED, text)
        return text

    def scrub_query(self, query: str) -> str:
        """``token=abc&page=2`` -> ``token=%5BFiltered%5D&page=2``."""
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs:
            return self.scrub_text(query)
        return urlencode(
            [(key, FILTERED if self.is_secret_name(key) else self.scrub_text(value)) for key, value in pairs]
        )

    def scrub_url(self, url: str) -> str:
        parts = urlsplit(url)
        if not parts.query:
            return self.scrub_text(url)
        return urlunsplit(parts._replace(path=self.scrub_text(parts.path), query=self.scrub_query(parts.query)))

    def scrub_path(self, path: str, route: str | None) -> str:
        """Replace the segments of ``path`` that fill secret-named parameters of ``route``
        (``/reset/{token}``); paths that do not line up with the template stay as they are."""
        if route and "{" in route:
            template, segments = route.split("/"), path.split("/")
            if len(template) == len(segments):
                for index, part in enumerate(template):
                    parameter = _PATH_PARAMETER.match(part)
                    if parameter and self.is_secret_name(parameter.group(1)):
                        segments[index] = FILTERED
                path = "/".join(segments)
        return self.scrub_text(path)

    def scrub_attribute(self, key: str, value: Any, route: str | None = None) -> Any:
        """A span attribute: ``url.path`` by the route template's secret parameters, the rest by `scrub`."""
        if key == "url.path" and isinstance(value, str):
            return self.scrub_path(value, route)
        return self.scrub(value, key)

    def scrub(self, value: Any, key: str | None = None) -> Any:
        """A scrubbed copy of ``value`` (dicts, lists, strings; other types pass unchanged)."""
        if key is not None and self.is_secret_name(key):
            return FILTERED if value not in (None, "") else value
        if isinstance(value, str):
            if key in _ID_KEYS and _HEX_ID_VALUE.fullmatch(value):
                return value
            if key in _QUERY_KEYS:
                return self.scrub_query(value)
            if key in _URL_KEYS:
                return self.scrub_url(value)
            return self.scrub_text(value)
        if isinstance(value, Mapping):
            return {k: self.scrub(v, k if isinstance(k, str) else None) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub_item(item) for item in value]
        return value

    def _scrub_item(self, item: Any) -> Any:
        """Headers and query strings may come as ``[name, value]`` pairs: those are scrubbed by name."""
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
            return [item[0], self.scrub(item[1], item[0])]
        return self.scrub(item)


__all__ = ["FILTERED", "PII_NAME_PATTERNS", "SECRET_NAME_PATTERNS", "Scrubber", "luhn_valid"]
