"""The small JSON path subset checks use to assert on and extract from response bodies.

``$`` is the document, ``.name`` or ``['name']`` a member, ``[0]`` an element (negative counts
from the end)::

    >>> find({"items": [{"id": 7}]}, "$.items[0].id")
    7

A full JSONPath engine (filters, wildcards, recursive descent) would make assertions that match
several values; a check wants exactly one value per path, so this subset is all there is.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(-?\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class PathNotFound(LookupError):
    """The document has no value at the path."""


def parse(path: str) -> tuple[str | int, ...]:
    """``"$.items[0].id"`` -> ``("items", 0, "id")``; raises ValueError for anything else."""
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    parts: list[str | int] = []
    position = 1
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise ValueError(
                f"JSON path {path!r}: cannot read {path[position:]!r} (use $.name, $['name'] or $.list[0])"
            )
        name, index, quoted, double_quoted = match.groups()
        parts.append(
            int(index) if index is not None else next(p for p in (name, quoted, double_quoted) if p is not None)
        )
        position = match.end()
    return tuple(parts)


def find(document: Any, path: str) -> Any:
    """The value at ``path``; raises `PathNotFound` naming the first part that is missing."""
    value = document
    walked = "$"
    for part in parse(path):
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                raise PathNotFound(f"{walked} has no element [{part}]")
            value = value[part]
            walked += f"[{part}]"
        else:
            if not isinstance(value, dict) or part not in value:
                raise PathNotFound(f"{walked} has no member {part!r}")
            value = value[part]
            walked += f".{part}"
    return value
