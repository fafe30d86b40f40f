"""``/health`` (liveness) and ``/health/detailed`` (readiness) endpoints.

``GET /health`` answers ``{"status": "ok"}`` without touching any dependency: a liveness
probe that fails because the database is slow would restart a healthy process.

``GET /health/detailed`` runs every registered check concurrently, each bounded by
``health.timeout_seconds``, and answers 200 when all pass, 503 otherwise::

    {"status": "ok" | "fail",
     "service": {"name": "checkout", "version": "1.4.2", "environment": "prod"},
     "checks": {"database:127.0.0.1:5432/app": {"status": "ok", "latency_ms": 1.9},
                "redis:redis": {"status": "timeout", "latency_ms": 2000.4, "error": "no answer in 2.0 s"},
                "otlp": {"status": "fail", "latency_ms": 0.3, "error": "ConnectionRefusedError: ..."}}}

A check whose previous run is still hung is reported as a timeout at once instead of being
started again, so a dead dependency cannot pile up threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_CREDENTIALS = re.compile(r"://[^/\s@]+@")


@dataclass(frozen=True)
class Check:
    """A readiness check: ``blocking`` ones run in a daemon thread, the others on the event loop."""

    probe: Callable[[], Any]
    blocking: bool


class HealthChecks:
    """The readiness checks of one handle, and the two endpoints that report them."""

    def __init__(self, timeout_seconds: float, service: dict[str, str]) -> None:
        self.timeout_seconds = timeout_seconds
        self._service = service
        self._checks: dict[str, Check] = {}
        self._running: dict[str, concurrent.futures.Future[None]] = {}

    async def liveness(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok"})

    async def readiness(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        checks = await self.run()
        healthy = all(check["status"] == "ok" for check in checks.values())
        body = {"status": "ok" if healthy else "fail", "service": self._service, "checks": checks}
        return JSONResponse(body, status_code=200 if healthy else 503, headers={"cache-control": "no-store"})

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def names(self) -> list[str]:
        return list(self._checks)

    async def run(self) -> dict[str, dict[str, Any]]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _run_one(self, name: str) -> dict[str, Any]:
        started = time.perf_counter()

        def result(status: str, error: str | None = None) -> dict[str, Any]:
            outcome: dict[str, Any] = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
            if error:
                outcome["error"] = error
            return outcome

        check = self._checks[name]
        try:
            if check.blocking:
                previous = self._running.get(name)
                if previous is not None and not previous.done():
                    return result("timeout", "the previous check has not returned yet")
                future = _in_daemon_thread(check.probe, name)
                self._running[name] = future
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.timeout_seconds)
            else:  # cancellable: a timeout cancels it, nothing is left behind
                await asyncio.wait_for(check.probe(), self.timeout_seconds)
        except TimeoutError:
            return result("timeout", f"no answer in {self.timeout_seconds:g} s")
        except Exception as exc:
            return result("fail", describe_error(exc))
        return result("ok")


def _in_daemon_thread(probe: Callable[[], Any], name: str) -> concurrent.futures.Future[None]:
    """Run ``probe`` in its own daemon thread: a hung one never holds up the event loop's shutdown."""
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def work() -> None:
        try:
            probe()
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=work, name=f"otelkit-health-{name}", daemon=True).start()
    return future


def describe_error(exc: BaseException) -> str:
    """First line of the error, credentials in URLs masked, at most 200 characters."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    return _CREDENTIALS.sub("://***@", text)[:200]


def sqlalchemy_check(engine: Any) -> Check:
    """``SELECT 1`` on a connection from the pool."""
    from sqlalchemy import text

    if hasattr(engine, "sync_engine"):  # AsyncEngine

        async def select_one_async() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        return Check(select_one_async, blocking=False)

    def select_one() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return Check(select_one, blocking=True)


def redis_check(client: Any) -> Check:
    """``PING``."""
    ping = client.ping

    def expect_true(reply: Any) -> None:
        if reply is not True:
            raise RuntimeError(f"PING answered {reply!r}")

    # redis.asyncio's command methods are plain functions returning awaitables; the client's
    # execute_command tells which kind of client this is.
    if inspect.iscoroutinefunction(client.execute_command):

        async def ping_async() -> None:
            expect_true(await ping())

        return Check(ping_async, blocking=False)
    return Check(lambda: expect_true(ping()), blocking=True)


def tcp_check(endpoint: str) -> Check:
    """The OTLP endpoint accepts a TCP connection (the collector's receiver is listening)."""
    parts = urlsplit(endpoint)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)

    async def connect() -> None:
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()

    return Check(connect, blocking=False)
