"""The spec's Sentry integration tests: a real uvicorn app, sentry-sdk sending to the ingest double
(whose events pass Relay's normalizer), and an OTLP receiver standing in for the collector.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio
import sentry_sdk
from fastapi import FastAPI, Request
from opentelemetry import propagate
from sqlalchemy import create_engine, text

import otelkit
from otelkit import Otelkit
from tests.support.otlp_sink import OtlpSink
from tests.support.sentry_ingest import SentryIngest

FILTERED = "[Filtered]"
SERVICE = {"name": "checkout", "version": "1.4.2", "environment": "staging"}
PROCESSED_SPANS = "otel_sdk_processor_span_processed_total"


def make_app(cache: Any = None) -> tuple[FastAPI, Any, dict[str, Any]]:
    """The app under test, its SQLite engine, and what its endpoints saw (for assertions)."""
    app = FastAPI()
    engine = create_engine("sqlite://")
    seen: dict[str, Any] = {}

    @app.post("/orders/{order_id}")
    async def place_order(order_id: int) -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1 AS priced"))
        if cache is not None:
            await cache.get("cart:7")
        otelkit.add_breadcrumb("cart priced", category="checkout", data={"items": 3})
        otelkit.set_user({"id": "u-42"})
        propagate.inject(seen.setdefault("outgoing", {}))
        raise RuntimeError("payment declined")

    @app.post("/sync-orders/{order_id}")
    def place_order_in_a_thread(order_id: int) -> None:  # FastAPI runs it in a copy of the request's context
        with engine.connect() as connection:
            connection.execute(text("SELECT 2 AS priced"))
        otelkit.add_breadcrumb("priced in a thread", category="checkout")
        otelkit.set_user({"id": "u-sync"})
        raise RuntimeError("payment declined in a thread")

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/me")
    async def me() -> dict[str, str]:
        otelkit.set_user({"id": "u-A"})
        otelkit.add_breadcrumb("only for u-A")
        return {"user": "u-A"}

    @app.post("/reset/{token}")
    async def reset(token: str, request: Request) -> None:
        planted = request.app.state.planted
        await request.json()  # the body is in the event as the application read it
        sentry_sdk.set_extra("api_key", planted["extra"])
        sentry_sdk.set_context("upstream", {"headers": {"Set-Cookie": planted["set_cookie"]}})
        otelkit.add_breadcrumb("session loaded", data={"session": planted["breadcrumb"]})
        raise ValueError(f"declined card {planted['card']}")

    return app, engine, seen


@contextmanager
def running(
    app: FastAPI,
    ingest: SentryIngest,
    collector_endpoint: str,
    served: Callable[[Any], Any],
    sentry: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Iterator[tuple[str, Otelkit]]:
    settings: dict[str, Any] = {
        "service": SERVICE,
        "sentry": {"dsn": ingest.dsn, **(sentry or {})},
        "otlp": {"endpoint": collector_endpoint, "protocol": "http/protobuf", "metrics": False},
        "prometheus": {"enabled": False},
        "metrics": {"system_metrics": False},
    }
    handle = otelkit.init(app, **{**settings, **kwargs})
    try:
        with served(app) as url:
            yield url, handle
        # uvicorn has stopped, so every request span has ended: a client can read the response before the
        # server's middleware ends its span, and a span ending mid-shutdown would miss one of the exports.
    finally:
        handle.shutdown()  # flushes spans and events


def traceparent() -> tuple[str, str, str]:
    """A fresh incoming trace: (trace id, parent span id, header value builder prefix)."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}"


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_an_unhandled_exception_is_one_error_event_with_its_context(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any], redis_url: str
) -> None:
    sink, endpoint = collector
    cache = redis.asyncio.Redis.from_url(redis_url)
    app, engine, seen = make_app(cache)
    trace_id, parent_id, prefix = traceparent()
    with running(app, ingest, endpoint, served, engine=engine, redis=cache, sentry={"traces_sample_rate": 1.0}) as (
        url,
        _,
    ):
        response = httpx.post(f"{url}/orders/7", headers={"traceparent": f"{prefix}-01"})
        assert response.status_code == 500

    assert len(ingest.events) == 1, [event.get("exception") for event in ingest.events]
    ingest.assert_accepted()
    event = ingest.events[0]
    assert event["transaction"] == "POST /orders/{order_id}"
    assert event["transaction_info"] == {"source": "route"}
    assert event["release"] == "checkout@1.4.2" and event["environment"] == "staging"
    assert {"service": "checkout", "http.route": "/orders/{order_id}"}.items() <= dict(event["tags"]).items()
    assert event["request"]["method"] == "POST" and event["request"]["url"].endswith("/orders/7")
    assert event["contexts"]["response"]["status_code"] == 500
    assert event["user"]["id"] == "u-42"
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["mechanism"]["handled"]) == ("RuntimeError", False)
    crumbs = {(crumb.get("category"), crumb.get("message")) for crumb in event["breadcrumbs"]["values"]}
    assert {("query", "SELECT 1 AS priced"), ("redis", "GET cart:7"), ("checkout", "cart priced")} <= crumbs

    (server_span,) = [span for span in sink.spans() if span.name == "POST /orders/{order_id}"]
    assert server_span.trace_id.hex() == trace_id and server_span.parent_span_id.hex() == parent_id
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert event["contexts"]["trace"]["span_id"] == server_span.span_id.hex()
    assert seen["outgoing"]["traceparent"].split("-")[1] == trace_id  # W3C still goes downstream
    assert "sentry-trace" not in seen["outgoing"]


def test_an_unsampled_request_still_reports_with_its_trace_id_and_breadcrumbs(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any]
) -> None:
    sink, endpoint = collector
    app, engine, _ = make_app()
    trace_id, _, prefix = traceparent()
    with running(app, ingest, endpoint, served, engine=engine, sentry={"traces_sample_rate": 1.0}) as (url, _):
        assert httpx.post(f"{url}/orders/8", headers={"traceparent": f"{prefix}-00"}).status_code == 500

    (event,) = ingest.events
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert ("query", "SELECT 1 AS priced") in {
        (c.get("category"), c.get("message")) for c in event["breadcrumbs"]["values"]
    }
    assert sink.spans() == [] and ingest.spans() == []  # the caller decided: not traced, anywhere


def test_sampled_requests_reach_sentry_as_the_same_spans_the_collector_gets(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any]
) -> None:
    sink, endpoint = collector
    app, engine, _ = make_app()
    with running(app, ingest, endpoint, served, engine=engine, sentry={"traces_sample_rate": 1.0}) as (url, _):
        for item in (1, 2, 3):
            assert httpx.get(f"{url}/items/{item}").status_code == 200
        assert httpx.post(f"{url}/orders/9").status_code == 500

    ingest.assert_accepted()
    in_sentry = {(span.trace_id, span.span_id, span.name) for span in ingest.spans()}
    in_collector = {(span.trace_id, span.span_id, span.name) for span in sink.spans()}
    assert in_sentry == in_collector and len(in_sentry) == 5  # 4 server spans and the query's
    assert {name for _, _, name in in_sentry} == {"GET /items/{item_id}", "POST /orders/{order_id}", "SELECT"}
    assert ingest.transactions == []  # no Sentry-native transaction on top of the OTel spans
    (event,) = ingest.events
    error_span = next(span for span in ingest.spans() if span.name == "POST /orders/{order_id}")
    assert (event["contexts"]["trace"]["trace_id"], event["contexts"]["trace"]["span_id"]) == (
        error_span.trace_id.hex(),
        error_span.span_id.hex(),
    )


def test_the_collectors_credentials_never_travel_to_sentry(
    ingest: SentryIngest,
    collector: tuple[OtlpSink, str],
    served: Callable[[Any], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, endpoint = collector
    api_key = secrets.token_hex(8)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-collector-key={api_key}")  # the OTel way to authenticate
    app, _, _ = make_app()
    with running(app, ingest, endpoint, served, sentry={"traces_sample_rate": 1.0}) as (url, _):
        assert httpx.get(f"{url}/items/1").status_code == 200

    assert ingest.spans() and sink.trace_requests
    assert all(headers.get("x-collector-key") == api_key for headers in sink.headers)
    assert all("x-collector-key" not in headers for headers in ingest.headers)
    assert all(headers["x-sentry-auth"].startswith("Sentry sentry_key=otelkitpublic,") for headers in ingest.headers)


def test_one_sampling_decision_for_the_collector_and_sentry(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any]
) -> None:
    sink, endpoint = collector
    app, _, _ = make_app()
    sampled_half = {"traces_sample_rate": 0.5}
    with running(app, ingest, endpoint, served, sentry=sampled_half) as (url, _), httpx.Client() as client:
        for item in range(40):
            assert client.get(f"{url}/items/{item}").status_code == 200

    in_sentry = {span.trace_id for span in ingest.spans()}
    in_collector = {span.trace_id for span in sink.spans()}
    assert in_sentry == in_collector
    assert 0 < len(in_sentry) < 40  # sampled at 0.5, not all or nothing (each has probability 2**-40)


def test_a_sync_endpoint_reports_what_it_set_in_its_worker_thread(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any]
) -> None:
    _, endpoint = collector
    app, engine, _ = make_app()
    with running(app, ingest, endpoint, served, engine=engine) as (url, _):
        assert httpx.post(f"{url}/sync-orders/11").status_code == 500

    (event,) = ingest.events
    assert event["transaction"] == "POST /sync-orders/{order_id}"
    assert event["user"]["id"] == "u-sync"
    crumbs = {(crumb.get("category"), crumb.get("message")) for crumb in event["breadcrumbs"]["values"]}
    assert {("query", "SELECT 2 AS priced"), ("checkout", "priced in a thread")} <= crumbs


def test_user_and_breadcrumbs_stay_with_their_own_request(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any]
) -> None:
    _, endpoint = collector
    app, _, _ = make_app()
    with running(app, ingest, endpoint, served) as (url, _), httpx.Client() as client:
        assert client.get(f"{url}/me").status_code == 200
        assert client.post(f"{url}/orders/10").status_code == 500

    (event,) = ingest.events
    assert event["user"]["id"] == "u-42"  # set by /orders itself, not u-A from the request before
    assert "only for u-A" not in {crumb.get("message") for crumb in event["breadcrumbs"]["values"]}


def luhn_card() -> str:
    """A random 16-digit number passing the Luhn check, spaced as people type it."""
    digits = [4, *(secrets.randbelow(10) for _ in range(14))]
    total = sum(d if i % 2 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    digits.append((10 - total % 10) % 10)
    text_digits = "".join(map(str, digits))
    return " ".join(text_digits[i : i + 4] for i in range(0, 16, 4))


def test_planted_secrets_never_reach_the_ingest(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any]
) -> None:
    _, endpoint = collector
    app, _, _ = make_app()
    planted = {name: f"{name}-{secrets.token_hex(6)}" for name in ("auth", "cookie", "password", "query", "extra")}
    planted.update(set_cookie=f"sid={secrets.token_hex(6)}", breadcrumb=secrets.token_hex(6), path=secrets.token_hex(6))
    planted["card"] = luhn_card()
    app.state.planted = planted
    seen_by_app_hook: list[Any] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen_by_app_hook.append(event["request"]["query_string"])
        event.setdefault("tags", {})["app.before_send"] = "ran"
        return event

    with running(app, ingest, endpoint, served, sentry={"traces_sample_rate": 1.0}, sentry_before_send=before_send) as (
        url,
        _,
    ):
        response = httpx.post(
            f"{url}/reset/{planted['path']}",
            params={"token": planted["query"], "page": "2"},
            json={"password": planted["password"], "remember": True},
            headers={"Authorization": f"Bearer {planted['auth']}", "Cookie": f"session={planted['cookie']}"},
        )
        assert response.status_code == 500

    ingest.assert_accepted()
    assert seen_by_app_hook == [f"token={planted['query']}&page=2"]  # the application's hook ran before scrubbing
    wire = b"\n".join(ingest.bodies)
    leaked = [name for name, value in planted.items() if value.encode() in wire]
    assert leaked == []
    assert ingest.spans(), "the request's spans reached Sentry too, and were searched"

    (event,) = ingest.events
    request = event["request"]
    headers = dict(request["headers"])
    assert (headers["Authorization"], headers["Cookie"]) == (FILTERED, FILTERED)
    assert request["data"] == {"password": FILTERED, "remember": True}
    assert dict(request["query_string"]) == {"token": FILTERED, "page": "2"}
    assert request["url"].endswith(f"/reset/{FILTERED}")
    assert event["extra"]["api_key"] == FILTERED
    assert event["contexts"]["upstream"]["headers"]["Set-Cookie"] == FILTERED
    assert {"session": FILTERED} in [crumb.get("data") for crumb in event["breadcrumbs"]["values"]]
    assert event["exception"]["values"][0]["value"] == f"declined card {FILTERED}"
    assert dict(event["tags"])["app.before_send"] == "ran"
    (server_span,) = [span for span in ingest.spans() if span.name == "POST /reset/{token}"]
    span_attributes = attributes(server_span)
    assert span_attributes["url.path"] == f"/reset/{FILTERED}"
    assert span_attributes["url.query"] == "token=%5BFiltered%5D&page=2"
    assert span_attributes["client.address"] == FILTERED


@pytest.mark.slow
def test_a_hung_ingest_costs_requests_nothing_and_memory_stays_bounded(
    ingest: SentryIngest, collector: tuple[OtlpSink, str], served: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export every 0.1 s, so the test need not wait 5 s
    sink, endpoint = collector
    app, _, _ = make_app()
    ingest.hang()
    requests = 130
    tracing = {"max_queue_size": 64, "max_export_batch_size": 8}  # the collector's queue too: room to spare
    with running(
        app, ingest, endpoint, served, sentry={"traces_sample_rate": 1.0}, tracing=tracing, prometheus={"enabled": True}
    ) as (url, handle):
        queue_size = sentry_sdk.get_client().options["transport_queue_size"]
        # uvicorn closes a connection whose request raised, so no keep-alive here
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            statuses = [client.post(f"{url}/orders/{n}").status_code for n in range(requests)]
        # Every request was answered while Sentry answered nothing ...
        assert statuses == [500] * requests and ingest.held >= 1
        # ... the collector's export carried on beside the stuck Sentry export ...
        assert sink.wait_for(lambda: len(sink.spans()) == requests, timeout=10)
        # ... and sentry-sdk held one connection per channel, not one per event or span batch.
        assert ingest.most_held <= 2
        ingest.release()
        handle.force_flush(timeout_seconds=60)  # sends what was queued, then the client report of what was not
        assert handle.prometheus_registry is not None
        spans_dropped = sum(
            sample.value
            for family in handle.prometheus_registry.collect()
            for sample in family.samples
            if sample.name == PROCESSED_SPANS and sample.labels.get("error_type") == "queue_full"
        )

    delivered = len(ingest.events)
    dropped = ingest.discarded().get(("queue_overflow", "error"), 0)
    assert delivered + dropped == requests
    assert delivered <= queue_size + 1  # the queue, and the one envelope the worker was sending
    assert dropped >= requests - queue_size - 1
    # The Sentry span queue (64) dropped what did not fit, and said how many.
    assert spans_dropped > 0 and len(ingest.spans()) + spans_dropped == requests
