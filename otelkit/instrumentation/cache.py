"""Redis: command spans (opentelemetry-instrumentation-redis) and ``cache_hits_total`` / ``cache_misses_total``.

Hits and misses are read off the replies of commands whose reply says whether the key was
there, counted per key asked for:

| command | hit | miss |
|---|---|---|
| GET, GETEX, GETDEL, HGET | a value | nil |
| MGET, HMGET | each non-nil element | each nil element |
| EXISTS | the count returned | keys asked minus that count |

Everything else is not counted: a write says nothing about the cache's hit rate, and
commands such as SCAN, KEYS or TTL are not lookups. Pipelines are counted command by
command. Application caches that are not Redis (or that read through other commands)
record with ``otelkit.record_cache_hit(cache)`` / ``record_cache_miss(cache)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.trace import TracerProvider

from otelkit._internal.bound import BoundCounter, Cell
from otelkit._internal.log_once import log_exception_once
from otelkit._internal.overflow import OverflowWarner
from otelkit.errors import OtelkitConfigError

_SINGLE_KEY_READS = frozenset({"GET", "GETEX", "GETDEL", "HGET"})
_MULTI_KEY_READS = frozenset({"MGET", "HMGET"})


class CacheMetrics:
    """``cache_hits_total{cache}`` and ``cache_misses_total{cache}``."""

    def __init__(self, meter: Meter, *, cardinality_limit: int, warner: OverflowWarner) -> None:
        def counter(name: str, description: str) -> BoundCounter:
            return BoundCounter(
                meter, name, ("cache",), description=description, cardinality_limit=cardinality_limit, warner=warner
            )

        self.hits = counter("cache_hits_total", "Cache lookups that found the key.")
        self.misses = counter("cache_misses_total", "Cache lookups that did not find the key.")

    def record(self, cache: str, hits: int, misses: int) -> None:
        if hits:
            self.hits.cell((cache,)).add(hits)
        if misses:
            self.misses.cell((cache,)).add(misses)


def count_reply(args: Sequence[Any], reply: Any) -> tuple[int, int]:
    """(hits, misses) a command's reply shows; (0, 0) for commands that are not lookups."""
    if not args:
        return 0, 0
    command = str(args[0]).upper() if not isinstance(args[0], bytes) else args[0].decode().upper()
    if command in _SINGLE_KEY_READS:
        return (0, 1) if reply is None else (1, 0)
    if command in _MULTI_KEY_READS and isinstance(reply, list):
        misses = sum(1 for item in reply if item is None)
        return len(reply) - misses, misses
    if command == "EXISTS" and isinstance(reply, int):
        asked = len(args) - 1
        return reply, max(0, asked - reply)
    return 0, 0


class _Recorder:
    __slots__ = ("hits", "misses")

    def __init__(self, metrics: CacheMetrics, cache: str) -> None:
        self.hits: Cell = metrics.hits.cell((cache,))
        self.misses: Cell = metrics.misses.cell((cache,))

    def __call__(self, args: Sequence[Any], reply: Any) -> None:
        try:
            hits, misses = count_reply(args, reply)
            if hits:
                self.hits.add(hits)
            if misses:
                self.misses.add(misses)
        except Exception:
            log_exception_once("cache-metrics", "otelkit: counting a Redis reply failed")


def instrument_redis(
    client: Any, metrics: CacheMetrics, tracer_provider: TracerProvider | None, cache: str = "redis"
) -> None:
    """Trace ``client``'s commands and count its hits and misses (sync or asyncio client)."""
    if not hasattr(client, "execute_command") or not hasattr(client, "pipeline"):
        raise OtelkitConfigError(f"redis: expected a redis.Redis or redis.asyncio.Redis, got {type(client).__name__}")
    if tracer_provider is not None:
        try:
            from opentelemetry.instrumentation.redis import RedisInstrumentor
        except ImportError as exc:
            raise OtelkitConfigError("tracing Redis needs pip install 'otelkit[redis]'") from exc
        RedisInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
    recorder = _Recorder(metrics, cache)
    _wrap_execute(client, recorder)
    _wrap_pipeline(client, recorder)


def _wrap_execute(client: Any, recorder: _Recorder) -> None:
    execute = client.execute_command
    if inspect.iscoroutinefunction(execute):

        @functools.wraps(execute)
        async def execute_async(*args: Any, **options: Any) -> Any:
            reply = await execute(*args, **options)
            recorder(args, reply)
            return reply

        client.execute_command = execute_async
    else:

        @functools.wraps(execute)
        def execute_sync(*args: Any, **options: Any) -> Any:
            reply = execute(*args, **options)
            recorder(args, reply)
            return reply

        client.execute_command = execute_sync


def _wrap_pipeline(client: Any, recorder: _Recorder) -> None:
    make_pipeline = client.pipeline

    @functools.wraps(make_pipeline)
    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        if inspect.iscoroutinefunction(execute):

            async def execute_async(*a: Any, **kw: Any) -> Any:
                commands = list(pipe.command_stack)
                replies = await execute(*a, **kw)
                for (command_args, _), reply in zip(commands, replies, strict=False):
                    recorder(command_args, reply)
                return replies

            pipe.execute = execute_async
        else:

            def execute_sync(*a: Any, **kw: Any) -> Any:
                commands = list(pipe.command_stack)
                replies = execute(*a, **kw)
                for (command_args, _), reply in zip(commands, replies, strict=False):
                    recorder(command_args, reply)
                return replies

            pipe.execute = execute_sync
        return pipe

    client.pipeline = pipeline
