from __future__ import annotations

import asyncio
import random
import string

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from starlette.staticfiles import StaticFiles

import otelkit
from otelkit import OtelkitConfigError
from otelkit.testing import MetricsCapture

QUIET = {"metrics": {"system_metrics": False}}
TRACERS = ["otelkit", "opentelemetry-instrumentation"]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def get_item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(404)
        return {"id": item_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def body():  # type: ignore[no-untyped-def]
            for _ in range(3):
                await asyncio.sleep(0.05)
                yield b"chunk"

        return StreamingResponse(body())

    return app


def serve_raw(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], query: bytes = b"") -> int:
    """One GET over raw ASGI, headers exactly as given (a server may repeat them or keep their case);
    returns the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("10.0.0.9", 5555),
        "server": ("10.0.0.1", 8443),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status


def test_requests_are_counted_exactly_by_route_template(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    client = TestClient(app)
    for item_id in range(7):
        assert client.get(f"/items/{item_id}").status_code == 200
    client.get("/items/404")
    assert otelkit_capture.value("http_requests_total", method="GET", handler="/items/{item_id}", status="200") == 7
    assert otelkit_capture.value("http_requests_total", method="GET", handler="/items/{item_id}", status="404") == 1
    histogram = otelkit_capture.histogram("http_request_duration_seconds", method="GET", handler="/items/{item_id}")
    assert histogram.count == 8
    assert set(histogram.buckets) == {*otelkit.PrometheusSettings().default_buckets, float("inf")}
    assert not [s for s in otelkit_capture.series("http_requests_total") if s.labels["handler"].startswith("/items/1")]


def test_the_label_keys_are_exactly_the_spec_ones(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    TestClient(app).get("/items/1")
    (counter,) = otelkit_capture.series("http_requests_total")
    assert set(counter.labels) == {"method", "handler", "status"}
    buckets = otelkit_capture.series("http_request_duration_seconds_bucket")
    assert {frozenset(b.labels) for b in buckets} == {frozenset({"method", "handler", "le"})}


def test_status_can_be_grouped_by_class(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, http={"status_label": "class"}, **QUIET)
    client = TestClient(app)
    client.get("/items/1")
    client.get("/items/404")
    client.get("/items/not-a-number")
    assert otelkit_capture.value("http_requests_total", handler="/items/{item_id}", status="2xx") == 1
    assert otelkit_capture.value("http_requests_total", handler="/items/{item_id}", status="4xx") == 2


def test_excluded_handlers_are_not_recorded(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    client = TestClient(app)
    for path in ["/health", "/metrics", "/docs", "/redoc"]:
        assert client.get(path).status_code == 200
    client.get("/items/1")
    handlers = {s.labels["handler"] for s in otelkit_capture.series("http_requests_total")}
    assert handlers == {"/items/{item_id}"}


@pytest.mark.parametrize("tracer", TRACERS)
def test_an_exception_records_500_and_marks_the_span(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/boom").status_code == 500
    assert otelkit_capture.value("http_requests_total", handler="/boom", status="500") == 1
    (span,) = [s for s in otelkit_capture.spans if s["name"] == "GET /boom"]
    assert span["status"] == "ERROR"
    assert [e["attributes"]["exception.type"] for e in span["events"]] == ["RuntimeError"]


@pytest.mark.parametrize("tracer", TRACERS)
def test_spans_are_named_by_route_template(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    TestClient(app).get("/items/42")
    assert [s["name"] for s in otelkit_capture.spans] == ["GET /items/{item_id}"]
    assert otelkit_capture.spans[0]["attributes"]["http.route"] == "/items/{item_id}"


@pytest.mark.parametrize("tracer", TRACERS)
def test_health_checks_are_not_traced(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    TestClient(app).get("/health")
    assert otelkit_capture.spans == []


def test_streaming_responses_are_timed_to_their_last_byte(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    assert TestClient(app).get("/stream").content == b"chunk" * 3
    histogram = otelkit_capture.histogram("http_request_duration_seconds", handler="/stream")
    assert histogram.sum >= 0.15


def test_router_prefixes_mounts_and_root_path(otelkit_capture: MetricsCapture, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = FastAPI()
    router = APIRouter(prefix="/v1")

    @router.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        return {"id": order_id}

    app.include_router(router)
    tenant_api = FastAPI()

    @tenant_api.get("/things/{thing}")
    def thing(thing: str) -> dict[str, str]:
        return {"thing": thing}

    app.mount("/tenants/{tenant}", tenant_api)
    (tmp_path / "logo.txt").write_text("logo")
    app.mount("/static", StaticFiles(directory=tmp_path))
    otelkit.init(app, **QUIET)
    client = TestClient(app, root_path="/api")
    assert client.get("/api/v1/orders/5").status_code == 200
    assert client.get("/api/tenants/acme/things/a").status_code == 200
    assert client.get("/api/tenants/globex/things/b").status_code == 200
    assert client.get("/api/static/logo.txt").text == "logo"
    assert otelkit_capture.value("http_requests_total", handler="/v1/orders/{order_id}") == 1
    assert otelkit_capture.value("http_requests_total", handler="/tenants/{tenant}/things/{thing}") == 2
    assert otelkit_capture.value("http_requests_total", handler="/static/{path}") == 1


def test_init_before_routes_are_added_works_too(otelkit_capture: MetricsCapture) -> None:
    app = FastAPI()
    otelkit.init(app, **QUIET)

    @app.get("/late/{x}")
    def late(x: str) -> str:
        return x

    TestClient(app).get("/late/1")
    assert otelkit_capture.value("http_requests_total", handler="/late/{x}", status="200") == 1


def test_init_after_the_app_started_says_so() -> None:
    app = make_app()
    TestClient(app).get("/items/1")
    with pytest.raises(OtelkitConfigError, match="called after the app started serving"):
        otelkit.init(app, **QUIET)


def test_method_not_allowed_and_unknown_methods(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    client = TestClient(app)
    assert client.post("/items/1").status_code == 405
    client.request("BREW", "/items/1")
    assert otelkit_capture.value("http_requests_total", method="POST", handler="/items/{item_id}", status="405") == 1
    assert otelkit_capture.value("http_requests_total", method="_OTHER", handler="/items/{item_id}") == 1


def test_ten_thousand_unknown_paths_add_one_handler_value(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    TestClient(app).get("/items/1")

    async def scan() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(10_000):
                path = "/" + "".join(random.choices(string.ascii_lowercase, k=12))
                assert (await client.get(path)).status_code == 404

    asyncio.run(scan())
    handlers = {s.labels["handler"] for s in otelkit_capture.series("http_requests_total")}
    assert handlers == {"/items/{item_id}", "unmatched"}
    assert otelkit_capture.value("http_requests_total", handler="unmatched", status="404") == 10_000


@pytest.mark.parametrize("tracer", TRACERS)
def test_library_http_server_metrics_are_dropped_unless_kept(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    TestClient(app).get("/items/1")
    assert not [s for s in otelkit_capture.samples() if s.name.startswith("http_server_")]


def test_library_http_server_metrics_can_be_kept(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": "opentelemetry-instrumentation", "library_metrics": True}, **QUIET)
    TestClient(app).get("/items/1")
    assert [s for s in otelkit_capture.samples() if s.name.startswith("http_server_")]


def test_websockets_and_lifespan_pass_through(otelkit_capture: MetricsCapture) -> None:
    app = make_app()

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hi")
        await socket.close()

    otelkit.init(app, **QUIET)
    with TestClient(app) as client, client.websocket_connect("/ws") as socket:
        assert socket.receive_text() == "hi"
    otelkit_capture.assert_absent("http_requests_total", handler="/ws")


@pytest.mark.parametrize("tracer", TRACERS)
def test_an_incoming_traceparent_is_continued(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    TestClient(app).get("/items/1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    (span,) = otelkit_capture.spans
    assert (span["trace_id"], span["parent_span_id"], span["kind"]) == (trace_id, parent_id, "SERVER")


def test_server_span_attributes_follow_the_http_conventions(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    TestClient(app).get("/items/404?verbose=1", headers={"user-agent": "probe/1.0"})
    (span,) = otelkit_capture.spans
    assert span["attributes"] == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/items/404",
        "url.query": "verbose=1",
        "network.protocol.version": "1.1",
        "server.address": "testserver",
        "server.port": 80,  # the Host header names none: the port http implies
        "client.address": "testclient",
        "user_agent.original": "probe/1.0",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 404,
    }
    assert span["status"] == "UNSET"  # a 4xx is the client's error, not the server's


def test_an_unmatched_request_span_keeps_the_bare_method_name(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, **QUIET)
    TestClient(app).get("/no/such/page")
    (span,) = otelkit_capture.spans
    assert span["name"] == "GET"
    assert "http.route" not in span["attributes"]


def test_tracing_disabled_records_metrics_without_spans(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, tracing={"enabled": False}, **QUIET)
    TestClient(app).get("/items/1")
    assert otelkit_capture.spans == []
    assert otelkit_capture.value("http_requests_total", handler="/items/{item_id}") == 1


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_5xx_answer_without_an_exception_marks_the_span(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()

    @app.get("/unavailable")
    def unavailable() -> None:
        raise HTTPException(503)

    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    TestClient(app).get("/unavailable")
    (span,) = otelkit_capture.spans
    assert (span["name"], span["status"]) == ("GET /unavailable", "ERROR")
    if tracer == "otelkit":  # the library follows the older conventions: no error.type, http.status_code
        assert span["attributes"]["error.type"] == "503"
        assert span["attributes"]["http.response.status_code"] == 503


def test_repeated_headers_are_joined_and_every_baggage_line_is_extracted(otelkit_capture: MetricsCapture) -> None:
    """Raw ASGI headers, as a server hands them over: a header may come on several lines."""
    from opentelemetry import baggage

    app = make_app()
    seen: dict[str, object] = {}

    @app.get("/baggage")
    def read_baggage() -> None:
        seen.update(baggage.get_all())

    otelkit.init(app, **QUIET)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = [
        (b"host", b"shop.example:8443"),
        (b"user-agent", b"probe/1.0"),
        (b"baggage", b"tenant=acme"),
        (b"traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode()),
        (b"user-agent", b"extra"),
        (b"baggage", b"region=eu"),
    ]
    assert serve_raw(app, "/baggage", headers) == 200
    assert seen == {"tenant": "acme", "region": "eu"}
    (span,) = otelkit_capture.spans
    assert span["trace_id"] == trace_id
    attributes = span["attributes"]
    assert attributes["user_agent.original"] == "probe/1.0,extra"
    assert (attributes["server.address"], attributes["server.port"]) == ("shop.example", 8443)


def test_header_names_in_any_case_are_read(otelkit_capture: MetricsCapture) -> None:
    """ASGI asks servers to lowercase header names but does not require it."""
    app = make_app()
    otelkit.init(app, **QUIET)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = [
        (b"Host", b"shop.example:8443"),
        (b"Traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode()),
        (b"user-agent", b"probe/1.0"),
        (b"User-Agent", b"extra"),
    ]
    assert serve_raw(app, "/items/1", headers) == 200
    (span,) = otelkit_capture.spans
    assert span["trace_id"] == trace_id
    assert span["attributes"]["server.address"] == "shop.example"
    assert span["attributes"]["user_agent.original"] == "probe/1.0,extra"


def test_span_attribute_limits_bound_the_request_span_too(
    otelkit_capture: MetricsCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4")
    app = make_app()
    otelkit.init(app, **QUIET)
    TestClient(app).get("/items/1")
    (span,) = otelkit_capture.spans
    assert span["name"] == "GET /items/{item_id}"  # renamed even when the route attribute is dropped
    assert len(span["attributes"]) == 4


@pytest.mark.parametrize("tracer", TRACERS)
def test_middleware_added_after_init_is_inside_otelkits(otelkit_capture: MetricsCapture, tracer: str) -> None:
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["example.com"])
    assert TestClient(app).get("/items/1").status_code == 400  # "testserver" is not allowed
    assert otelkit_capture.value("http_requests_total", handler="unmatched", status="400") == 1
    (span,) = otelkit_capture.spans
    attributes = span["attributes"]  # the library writes the older names unless told otherwise
    assert attributes.get("http.response.status_code", attributes.get("http.status_code")) == 400


def test_the_status_an_exception_handler_answers_is_recorded(otelkit_capture: MetricsCapture) -> None:
    from fastapi.responses import JSONResponse

    app = make_app()

    @app.exception_handler(Exception)
    async def unavailable(request, exc):  # type: ignore[no-untyped-def]
        return JSONResponse({"detail": "try later"}, status_code=503)

    otelkit.init(app, **QUIET)
    assert TestClient(app, raise_server_exceptions=False).get("/boom").status_code == 503
    assert otelkit_capture.value("http_requests_total", handler="/boom", status="503") == 1
    (span,) = otelkit_capture.spans
    assert span["attributes"]["http.response.status_code"] == 503
    assert span["status"] == "ERROR" and span["events"][0]["name"] == "exception"


def test_background_tasks_after_the_body_are_not_request_time(otelkit_capture: MetricsCapture) -> None:
    import time

    app = make_app()

    @app.get("/later")
    def later(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(time.sleep, 1.0)
        return {"status": "queued"}

    otelkit.init(app, **QUIET)
    assert TestClient(app).get("/later").status_code == 200
    duration = otelkit_capture.histogram("http_request_duration_seconds", handler="/later")
    assert duration.count == 1
    assert duration.sum < 1.0  # the answer was immediate; the task's second came after it


def test_a_stream_cut_short_by_an_exception_counts_as_a_failure(otelkit_capture: MetricsCapture) -> None:
    app = make_app()

    @app.get("/broken-stream")
    def broken_stream() -> StreamingResponse:
        async def body():  # type: ignore[no-untyped-def]
            yield b"first"
            raise RuntimeError("source went away")

        return StreamingResponse(body())

    otelkit.init(app, **QUIET)
    with pytest.raises(RuntimeError, match="source went away"):
        TestClient(app).get("/broken-stream")
    assert otelkit_capture.value("http_requests_total", handler="/broken-stream", status="500") == 1
    (span,) = otelkit_capture.spans
    assert span["status"] == "ERROR"
    assert span["attributes"]["http.response.status_code"] == 200  # what the client was sent


def test_a_handler_excluded_by_its_template_is_not_recorded_but_traced_whole(otelkit_capture: MetricsCapture) -> None:
    app = make_app()

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        with handle.tracer.start_as_current_span("SELECT orders"):
            return {"id": order_id}

    handle = otelkit.init(app, prometheus={"excluded_handlers": ["/orders/{order_id}"]}, **QUIET)
    TestClient(app).get("/orders/7")
    otelkit_capture.assert_absent("http_requests_total", handler="/orders/{order_id}")
    query, request = otelkit_capture.spans  # the query's parent is exported too: no dangling parent id
    assert (query["name"], request["name"]) == ("SELECT orders", "GET /orders/{order_id}")
    assert query["parent_span_id"] == request["span_id"]


@pytest.mark.parametrize("measure_own_endpoints", [False, True])
def test_the_metrics_endpoint_is_not_counted_wherever_it_is(
    otelkit_capture: MetricsCapture, measure_own_endpoints: bool
) -> None:
    app = make_app()
    otelkit.init(
        app,
        prometheus={"metrics_path": "/internal/metrics"},
        http={"measure_own_endpoints": measure_own_endpoints},
        **QUIET,
    )
    TestClient(app).get("/internal/metrics")
    TestClient(app).get("/items/1")
    assert {s.labels["handler"] for s in otelkit_capture.series("http_requests_total")} == {"/items/{item_id}"}
    assert [span["name"] for span in otelkit_capture.spans] == ["GET /items/{item_id}"]


def test_the_library_tracer_excludes_only_the_exact_path(otelkit_capture: MetricsCapture) -> None:
    app = make_app()

    @app.get("/v1/health")
    def versioned_health() -> dict[str, str]:
        return {"status": "ok"}

    otelkit.init(app, http={"tracer": "opentelemetry-instrumentation"}, **QUIET)
    client = TestClient(app)
    client.get("/health")
    client.get("/health?verbose=1")
    client.get("/v1/health")
    assert [span["name"] for span in otelkit_capture.spans] == ["GET /v1/health"]


def test_http_server_metrics_from_any_instrumentation_are_dropped(otelkit_capture: MetricsCapture) -> None:
    handle = otelkit.init(**QUIET)
    library = handle.meter_provider.get_meter("opentelemetry.instrumentation.asgi")
    library.create_histogram("http.server.request.duration", unit="s").record(0.2, {"http.request.method": "GET"})
    library.create_up_down_counter("http.server.active_requests").add(1)
    handle.meter.create_histogram("checkout_duration", unit="s").record(0.2)
    names = {sample.name for sample in otelkit_capture.samples()}
    assert not [name for name in names if name.startswith("http_server_")]
    assert "checkout_duration_seconds_count" in names  # other seconds histograms keep their buckets
    assert otelkit_capture.histogram("checkout_duration_seconds").buckets[0.25] == 1


def test_library_metrics_without_the_library_tracer_is_refused() -> None:
    with pytest.raises(OtelkitConfigError, match=r"http\.library_metrics \(.*OTELKIT_HTTP__LIBRARY_METRICS\) = True"):
        otelkit.init(http={"library_metrics": True}, **QUIET)


def test_a_span_that_fails_to_start_does_not_fail_the_request(
    otelkit_capture: MetricsCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otelkit.instrumentation import http

    def broken(*args: object) -> None:
        raise RuntimeError("propagator bug")

    monkeypatch.setattr(http, "ServerSpan", broken)
    app = make_app()
    otelkit.init(app, **QUIET)
    assert TestClient(app).get("/items/1").status_code == 200
    assert otelkit_capture.value("http_requests_total", handler="/items/{item_id}") == 1


def test_the_duration_histogram_uses_the_configured_buckets(otelkit_capture: MetricsCapture) -> None:
    app = make_app()
    otelkit.init(app, prometheus={"default_buckets": [0.25, 0.5, 2.0]}, **QUIET)
    TestClient(app).get("/items/1")
    buckets = otelkit_capture.histogram("http_request_duration_seconds", handler="/items/{item_id}").buckets
    assert list(buckets) == [0.25, 0.5, 2.0, float("inf")]


@pytest.mark.parametrize("tracer", TRACERS)
def test_the_default_exclusions_are_not_traced(otelkit_capture: MetricsCapture, tracer: str) -> None:
    app = make_app()
    otelkit.init(app, http={"tracer": tracer}, **QUIET)
    client = TestClient(app)
    for path in ("/metrics", "/health", "/docs", "/redoc", "/items/1"):
        client.get(path)
    assert [span["name"] for span in otelkit_capture.spans] == ["GET /items/{item_id}"]


def test_connection_attributes_are_each_requests_own(otelkit_capture: MetricsCapture) -> None:
    """The Host header is parsed once per host and shared: each span still gets its own request's
    attributes, in the order the SDK's attribute limits keep them, and what a handler sets on its
    span stays there."""
    from opentelemetry import trace

    from otelkit.instrumentation import server_spans

    app = make_app()

    @app.get("/rename")
    def rename() -> None:
        trace.get_current_span().set_attribute("server.address", "set by the handler")

    otelkit.init(app, **QUIET)
    assert serve_raw(app, "/rename", [(b"host", b"a.example:81"), (b"user-agent", b"one")], query=b"q=1") == 200
    assert serve_raw(app, "/items/1", [(b"host", b"a.example:81"), (b"user-agent", b"two")]) == 200
    assert serve_raw(app, "/items/2", [(b"host", b"b.example")]) == 200
    assert serve_raw(app, "/items/3", []) == 200  # no Host: the server's own address
    assert serve_raw(app, "/no/such/page", [(b"host", b"a.example:81")]) == 404
    renamed, same, other, hostless, unmatched = (span["attributes"] for span in otelkit_capture.spans)
    assert renamed["server.address"] == "set by the handler" and renamed["url.query"] == "q=1"
    assert list(same) == [
        "http.request.method",
        "url.scheme",
        "url.path",
        "network.protocol.version",
        "server.address",
        "server.port",
        "client.address",
        "user_agent.original",
        "http.route",
        "http.response.status_code",
    ]
    assert (same["server.address"], same["server.port"], same["user_agent.original"]) == ("a.example", 81, "two")
    assert "url.query" not in same
    assert (other["server.address"], other["server.port"], other["url.path"]) == ("b.example", 443, "/items/2")
    assert "user_agent.original" not in other
    assert (hostless["server.address"], hostless["server.port"]) == ("10.0.0.1", 8443)
    assert "http.route" not in unmatched and unmatched["server.address"] == "a.example"

    filled = False
    for n in range(server_spans._SERVER_CACHE_LIMIT + 5):  # one host per request: the cache stays bounded
        assert serve_raw(app, "/items/1", [(b"host", f"h{n}.example".encode())]) == 200
        filled = filled or len(server_spans._server_cache) == server_spans._SERVER_CACHE_LIMIT
        assert len(server_spans._server_cache) <= server_spans._SERVER_CACHE_LIMIT
    assert filled
    assert (
        otelkit_capture.spans[-1]["attributes"]["server.address"] == f"h{server_spans._SERVER_CACHE_LIMIT + 4}.example"
    )
    long_host = b"x" * (server_spans._CACHED_HOST_MAX + 1)
    assert serve_raw(app, "/items/1", [(b"host", long_host)]) == 200  # parsed, not kept
    assert ("https", long_host) not in server_spans._server_cache
    assert otelkit_capture.spans[-1]["attributes"]["server.address"] == long_host.decode()
