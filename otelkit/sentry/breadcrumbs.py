"""Breadcrumbs: a public helper for the application's own, and automatic ones for DB and cache calls.

Why not sentry-sdk's SQLAlchemy and Redis integrations: they would also start a Sentry span
per query and command, a second trace beside the OpenTelemetry one. Why not derive them from
the OpenTelemetry spans: unsampled requests have none, yet their errors deserve breadcrumbs
too. So the hooks here only add a breadcrumb: SQLAlchemy's ``before_cursor_execute`` event on
every ``Engine`` (the statement as written, never its parameters), and a wrapper around
redis-py's ``execute_command`` and pipeline ``execute`` (the command and its key, never the
values). They are installed once per process and do nothing while otelkit's Sentry is off.
Everything is scrubbed again when an event carrying breadcrumbs is sent. sentry-sdk is imported
only once Sentry is on, so services without it do not pay for its import.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from otelkit._internal.log_once import log_exception_once

Level = Literal["fatal", "error", "warning", "info", "debug"]

_enabled = False
_install_lock = threading.Lock()
_installed = False
_MAX_MESSAGE = 1000


def add_breadcrumb(
    message: str,
    *,
    category: str = "app",
    level: Level = "info",
    data: Mapping[str, Any] | None = None,
) -> None:
    """Record a step the next error event of this request will show (no-op while Sentry is off).

    >>> otelkit.add_breadcrumb("cart priced", category="checkout", data={"items": 3})  # doctest: +SKIP
    """
    if _enabled:
        import sentry_sdk

        sentry_sdk.add_breadcrumb(message=message, category=category, level=level, data=dict(data or {}))


def set_user(user: Mapping[str, Any] | None) -> None:
    """Attach the signed-in user (``id``, ``username``, ``email`` ...) to this request's events.

    Scoped to the current request; ``None`` clears it. A no-op while Sentry is off.
    """
    if _enabled:
        import sentry_sdk

        sentry_sdk.set_user(dict(user) if user is not None else None)


def enable() -> None:
    """Switch the automatic breadcrumbs on (installing their hooks the first time)."""
    global _enabled, _installed
    with _install_lock:
        if not _installed:
            _hook_sqlalchemy()
            _hook_redis()
            _installed = True
        _enabled = True


def disable() -> None:
    global _enabled
    _enabled = False


def _query_breadcrumb(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
    if not _enabled:
        return
    try:
        import sentry_sdk

        sentry_sdk.add_breadcrumb(
            type="query",
            category="query",
            message=str(statement)[:_MAX_MESSAGE],
            data={"db.system": conn.dialect.name, **({"db.executemany": True} if executemany else {})},
        )
    except Exception:  # a breadcrumb must never fail a query
        log_exception_once("sentry-query-breadcrumb", "otelkit: adding a query breadcrumb failed")


def _hook_sqlalchemy() -> None:
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        return
    event.listen(Engine, "before_cursor_execute", _query_breadcrumb)


def _command_breadcrumb(args: tuple[Any, ...]) -> None:
    if not _enabled or not args:
        return
    import sentry_sdk

    command = _text(args[0]).upper()
    message = f"{command} {_text(args[1])}" if len(args) > 1 else command
    sentry_sdk.add_breadcrumb(
        category="redis", message=message[:_MAX_MESSAGE], data={"db.system": "redis", "db.operation": command}
    )


def _pipeline_breadcrumb(pipeline: Any) -> None:
    if not _enabled:
        return
    import sentry_sdk

    commands = [_text(args[0]).upper() for args, _ in getattr(pipeline, "command_stack", ()) if args]
    sentry_sdk.add_breadcrumb(
        category="redis",
        message=f"pipeline: {' '.join(commands)}"[:_MAX_MESSAGE],
        data={"db.system": "redis", "db.operation": "PIPELINE", "redis.commands": len(commands)},
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _hook_redis() -> None:
    try:
        import redis.asyncio.client
        import redis.client
    except ImportError:
        return
    for cls in (redis.client.Redis, redis.asyncio.client.Redis):
        cls.execute_command = _wrap(cls.execute_command, lambda self, args: _command_breadcrumb(args))
    for cls in (redis.client.Pipeline, redis.asyncio.client.Pipeline):
        cls.execute = _wrap(cls.execute, lambda self, args: _pipeline_breadcrumb(self))


def _wrap(method: Callable[..., Any], before: Callable[[Any, tuple[Any, ...]], None]) -> Callable[..., Any]:
    """Call ``before`` (never letting it fail the call), then the original, sync or async alike."""

    def note(self: Any, args: tuple[Any, ...]) -> None:
        try:
            before(self, args)
        except Exception:  # a breadcrumb must never fail a cache call
            log_exception_once("sentry-redis-breadcrumb", "otelkit: adding a Redis breadcrumb failed")

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def wrapped_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            note(self, args)
            return await method(self, *args, **kwargs)

        return wrapped_async

    @functools.wraps(method)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        note(self, args)
        return method(self, *args, **kwargs)

    return wrapped


__all__ = ["add_breadcrumb", "disable", "enable", "set_user"]
