"""Redis against a real server: command spans, hits and misses read off the replies."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis
import redis.asyncio

import otelkit
from otelkit.instrumentation.cache import count_reply
from otelkit.testing import MetricsCapture

QUIET = {"metrics": {"system_metrics": False}}


@pytest.mark.parametrize(
    ("args", "reply", "expected"),
    [
        (("GET", "k"), b"v", (1, 0)),
        (("GET", "k"), None, (0, 1)),
        ((b"GET", "k"), None, (0, 1)),
        (("HGET", "h", "f"), b"v", (1, 0)),
        (("MGET", "a", "b", "c"), [b"1", None, b"3"], (2, 1)),
        (("HMGET", "h", "a", "b"), [None, None], (0, 2)),
        (("EXISTS", "a", "b", "c"), 1, (1, 2)),
        (("SET", "k", "v"), True, (0, 0)),
        (("TTL", "k"), -2, (0, 0)),
    ],
)
def test_which_replies_count(args: tuple[object, ...], reply: object, expected: tuple[int, int]) -> None:
    assert count_reply(args, reply) == expected


@pytest.fixture
def client(redis_url: str):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def test_hits_and_misses_from_a_real_server(otelkit_capture: MetricsCapture, client: redis.Redis) -> None:
    otelkit.init(redis=client, **QUIET)
    client.set("user:1", "ada")
    client.hset("profile:1", "name", "ada")
    assert client.get("user:1") == b"ada"
    assert client.get("user:2") is None
    assert client.mget(["user:1", "user:2", "user:3"]) == [b"ada", None, None]
    assert client.hget("profile:1", "name") == b"ada"
    assert client.exists("user:1", "user:9") == 1
    assert otelkit_capture.value("cache_hits_total", cache="redis") == 4
    assert otelkit_capture.value("cache_misses_total", cache="redis") == 4


def test_pipelines_count_command_by_command(otelkit_capture: MetricsCapture, client: redis.Redis) -> None:
    handle = otelkit.init(**QUIET)
    handle.instrument_redis(client, cache="sessions")
    client.set("a", "1")
    with client.pipeline() as pipe:
        pipe.get("a").get("b").set("c", "3").mget("a", "c", "d")
        assert pipe.execute() == [b"1", None, True, [b"1", b"3", None]]
    assert otelkit_capture.value("cache_hits_total", cache="sessions") == 3
    assert otelkit_capture.value("cache_misses_total", cache="sessions") == 2


def test_commands_are_spans(otelkit_capture: MetricsCapture, client: redis.Redis) -> None:
    handle = otelkit.init(redis=client, **QUIET)
    with handle.tracer.start_as_current_span("job") as job:
        client.get("nothing")
    (span,) = [s for s in otelkit_capture.spans if s["name"] != "job"]
    assert span["name"] == "GET"
    assert span["parent_span_id"] == f"{job.get_span_context().span_id:016x}"


def test_asyncio_clients_are_counted_too(otelkit_capture: MetricsCapture, redis_url: str) -> None:
    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        otelkit.init(redis=client, **QUIET)
        await client.set("k", "v")
        assert await client.get("k") == b"v"
        assert await client.get("missing") is None
        async with client.pipeline() as pipe:
            await pipe.get("k").get("missing2").execute()
        await client.aclose()

    asyncio.run(run())
    assert otelkit_capture.value("cache_hits_total", cache="redis") == 2
    assert otelkit_capture.value("cache_misses_total", cache="redis") == 2
    names = [span["name"] for span in otelkit_capture.spans]
    assert names.count("GET") == 2 and "SET" in names  # the asyncio client's commands are spans too


def test_application_caches_record_through_the_public_api(otelkit_capture: MetricsCapture) -> None:
    otelkit.init(**QUIET)
    otelkit.record_cache_hit("pricing")
    otelkit.record_cache_hit("pricing", count=2)
    otelkit.record_cache_miss("pricing")
    assert otelkit_capture.value("cache_hits_total", cache="pricing") == 3
    assert otelkit_capture.value("cache_misses_total", cache="pricing") == 1


@pytest.mark.parametrize("count", [-2, 1.5, "3"])
def test_the_public_api_drops_counts_a_counter_cannot_take_and_says_so(
    otelkit_capture: MetricsCapture, caplog: pytest.LogCaptureFixture, count: object
) -> None:
    otelkit.init(**QUIET)
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        for record in (otelkit.record_cache_hit, otelkit.record_cache_miss):
            record("pricing", count=count)  # type: ignore[arg-type]
    otelkit_capture.assert_absent("cache_hits_total", cache="pricing")
    otelkit_capture.assert_absent("cache_misses_total", cache="pricing")
    assert caplog.text.count(f"count must be a whole number >= 0, got {count!r}") == 1


def test_the_public_api_takes_integer_like_counts(otelkit_capture: MetricsCapture) -> None:
    class Lookups:  # what numpy integers are to operator.index
        def __index__(self) -> int:
            return 4

    otelkit.init(**QUIET)
    otelkit.record_cache_hit("pricing", count=Lookups())  # type: ignore[arg-type]
    assert otelkit_capture.value("cache_hits_total", cache="pricing") == 4
