"""The route template that served a request: the ``handler`` label, bounded by construction.

Starlette's router leaves the matched route in ``scope["route"]`` and, for mounted
applications, extends ``scope["root_path"]`` by the raw path the mount consumed. The template
is the mounts' own templates followed by the innermost route's, so ``/tenants/{tenant}/items/{id}``
stays one series whatever the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.routing import BaseRoute, Mount

UNMATCHED = "unmatched"
"""``handler`` for requests no route matched (404s, slash redirects): one series, not one per path."""

_MAX_CACHED_PREFIXES = 1024


class RouteResolver:
    """Resolves ``handler`` for one application; caches mount prefixes (bounded)."""

    def __init__(self, app: Any) -> None:
        from starlette.routing import Mount  # here, not at import: otelkit imports without the fastapi extra

        self._mount: type[Mount] = Mount
        self._app = app
        self._prefixes: dict[str, str] = {}

    def handler(self, scope: dict[str, Any], entry_root_path: str) -> str:
        route = scope.get("route")
        raw_prefix = scope.get("root_path", "")[len(entry_root_path) :]
        if route is None and not raw_prefix:
            return UNMATCHED
        prefix = self._mount_prefix(raw_prefix) if raw_prefix else ""
        if route is None or isinstance(route, self._mount):
            # A mount took the request and no route below it claimed it: a plain ASGI app
            # (static files ...) or a sub-application's 404. One series per mount.
            return prefix + "/{path}"
        template = getattr(route, "path", None)
        return prefix + template if isinstance(template, str) else UNMATCHED

    def _mount_prefix(self, raw_prefix: str) -> str:
        cached = self._prefixes.get(raw_prefix)
        if cached is None:
            cached = _mount_templates(getattr(self._app, "routes", ()), raw_prefix, self._mount)
            if len(self._prefixes) >= _MAX_CACHED_PREFIXES:
                self._prefixes.clear()
            self._prefixes[raw_prefix] = cached
        return cached


def _mount_templates(routes: Sequence[BaseRoute], raw_prefix: str, mount: type[Mount]) -> str:
    """Map the raw path consumed by nested mounts back to the mounts' templates."""
    template = ""
    remaining = raw_prefix
    while remaining:
        for route in routes:
            if not isinstance(route, mount):
                continue
            match = route.path_regex.match(remaining + "/")
            if match is None:
                continue
            consumed = len(remaining) + 1 - len("/" + match.group("path"))
            template += route.path
            remaining = remaining[consumed:]
            routes = route.routes
            break
        else:
            return template + "/{mount}"  # not reachable through Mounts (a custom router): stay bounded
    return template
