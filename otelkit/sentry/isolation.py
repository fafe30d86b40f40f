"""One Sentry isolation scope per request, paid for only by requests that use it.

``sentry_sdk.set_user/set_tag/add_breadcrumb`` write to the *isolation* scope, so every request
needs its own, or one user's data reaches another's errors. Forking a scope per request (what
``sentry_sdk.isolation_scope()`` does, twice) allocates a dozen dicts and lists that live as long
as the request; with a few dozen requests in flight they are what the garbage collector finds
alive and promotes, and full collections of a large heap come several times more often (about
a tenth of a small service's throughput here). Most requests never touch Sentry, so each gets a
`_RequestScope`: one object, which becomes a fork of the server's isolation scope (process-wide
data stays) with a trace of its own the first time anything reads or writes it. It is set in
the request's context before the application runs, so code in a worker thread (a sync FastAPI
endpoint runs in a copy of the context) sees and fills the same scope.

This leans on ``Scope`` keeping its state in ``__slots__`` and on sentry-sdk's context variable;
a sentry-sdk without either gets an eager fork per request instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import sentry_sdk
from sentry_sdk.scope import Scope, ScopeType

try:
    from sentry_sdk.scope import _isolation_scope
except ImportError:  # pragma: no cover - a sentry-sdk that moved it
    _isolation_scope = None

_STATE: tuple[str, ...] = tuple(getattr(Scope, "__slots__", ()))
_empty = Scope(ty=ScopeType.ISOLATION)
_lazy_var = _isolation_scope if "_tags" in _STATE and not hasattr(_empty, "__dict__") else None


class _RequestScope(Scope):
    """An isolation scope that turns into a fork of ``base`` on first use; it also carries the request."""

    __slots__ = ("_otelkit_base", "_otelkit_request")

    def __init__(self, base: Scope, request: object) -> None:  # no Scope.__init__: nothing built until used
        self._otelkit_base = base
        self._otelkit_request = request

    def __getattr__(self, name: str) -> Any:
        # Python calls this only for a slot not yet set, that is before the first use.
        if name not in _STATE:
            raise AttributeError(name)
        self._materialise()
        return object.__getattribute__(self, name)

    def _materialise(self) -> None:
        fork = self._otelkit_base.fork()
        fork.set_new_propagation_context()
        for slot in _STATE:
            try:
                object.__getattribute__(self, slot)  # already assigned directly (``scope._user = ...``): keep it
            except AttributeError:
                object.__setattr__(self, slot, object.__getattribute__(fork, slot))


_fallback_request: ContextVar[object | None] = ContextVar("otelkit_sentry_request", default=None)


def enter_request_scope(request: object) -> Any:
    """Give the running request its own isolation scope, carrying ``request``; returns the token to leave it."""
    if _lazy_var is None:  # pragma: no cover
        manager = sentry_sdk.isolation_scope()
        manager.__enter__()
        return manager, _fallback_request.set(request)
    return _lazy_var.set(_RequestScope(_lazy_var.get() or _empty, request))


def leave_request_scope(token: Any) -> None:
    if _lazy_var is None:  # pragma: no cover
        manager, request_token = token
        _fallback_request.reset(request_token)
        manager.__exit__(None, None, None)
    else:
        _lazy_var.reset(token)


def current_request() -> Any:
    """What `enter_request_scope` was given for the request being served here, or None."""
    if _lazy_var is None:  # pragma: no cover
        return _fallback_request.get()
    scope = _lazy_var.get()
    try:
        return object.__getattribute__(scope, "_otelkit_request")
    except AttributeError:  # not a request's scope (or a fork of one): no request to describe
        return None


__all__ = ["current_request", "enter_request_scope", "leave_request_scope"]
