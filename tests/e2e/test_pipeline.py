"""SDK -> OTLP -> the otelkit collector -> Prometheus, on real binaries, with exact counts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

import otelkit
from otelkit import Otelkit
from stack.prometheus.recording import quantile_name
from stack.prometheus.rules_config import CONFIG
from tests.support.otlp_sink import OtlpSink, start_grpc_sink
from tests.support.pipeline import Collector, Prometheus, running_pipeline

pytestmark = pytest.mark.slow
P95_RECORD = f"job:http_request_duration_seconds:{quantile_name(CONFIG.latency_quantile)}_rate{CONFIG.latency_window}"
SERVICE = "e2e-shop"
SEL = f'job="{SERVICE}"'

# Prometheus name -> label keys besides job/instance: the spec's contract, as seen at the end of the pipeline.
CONTRACT: dict[str, set[str]] = {
    "http_requests_total": {"method", "handler", "status"},
    "http_request_duration_seconds_bucket": {"method", "handler", "le"},
    "http_request_duration_seconds_count": {"method", "handler"},
    "http_request_duration_seconds_sum": {"method", "handler"},
    "generation_requests_total": {"status", "model_type"},
    "generation_duration_seconds_bucket": {"status", "model_type", "le"},
    "generation_duration_seconds_count": {"status", "model_type"},
    "generation_duration_seconds_sum": {"status", "model_type"},
    "active_generations": {"model_type"},
    "payment_requests_total": {"provider", "status"},
    "payment_amount_total": {"provider", "currency"},
    "user_registrations_total": {"source"},
    "active_users": {"timeframe"},
    "queue_depth": {"queue"},
    "database_connections_in_use": {"pool"},
    "database_connections_idle": {"pool"},
    "database_connections_max": {"pool"},
    "database_connections_pool_size": {"pool"},
    "database_connections_overflow": {"pool"},
    "database_connections_checkout_timeouts_total": {"pool"},
    "cache_hits_total": {"cache"},
    "cache_misses_total": {"cache"},
    "system_cpu_usage_percent": set(),
    "system_memory_usage_percent": set(),
    "system_memory_used_bytes": set(),
    "system_memory_total_bytes": set(),
    "system_disk_usage_percent": {"mountpoint"},
    "system_disk_used_bytes": {"mountpoint"},
    "system_disk_total_bytes": {"mountpoint"},
    "system_process_resident_memory_bytes": set(),
    "system_process_cpu_seconds_total": set(),
    "system_process_cpu_usage_percent": set(),
    "system_process_open_fds": set(),
}


@pytest.fixture(scope="module")
def trace_sink() -> Iterator[tuple[OtlpSink, int]]:
    sink = OtlpSink()
    server, port = start_grpc_sink(sink)
    yield sink, port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, trace_sink: tuple[OtlpSink, int]
) -> Iterator[tuple[Collector, Prometheus]]:
    log_dir = tmp_path_factory.mktemp("pipeline")
    with running_pipeline(log_dir, traces_to=f"127.0.0.1:{trace_sink[1]}", load_rules=True) as pipeline:
        yield pipeline


def build_app(collector: Collector, postgres_url: str, redis_url: str) -> tuple[FastAPI, Otelkit, TestClient]:
    app = FastAPI()
    engine = sqlalchemy.create_engine(postgres_url, pool_size=2, max_overflow=1)
    cache = redis.Redis.from_url(redis_url)
    cache.flushdb()  # the Redis server is shared by the session: start with no cached item

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        if cache.get(f"item:{item_id}") is None:
            cache.set(f"item:{item_id}", item_id)
        return {"id": item_id}

    @app.get("/fail")
    def fail() -> None:
        raise HTTPException(503)

    @app.get("/slow")
    def slow() -> dict[str, str]:
        time.sleep(0.12)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        return {"ok": "slow"}

    handle = otelkit.init(
        app,
        engine=engine,
        redis=cache,
        service={"name": SERVICE, "version": "1.0.0"},
        otlp={"endpoint": collector.grpc_endpoint, "export_interval_seconds": 1},
        prometheus={"enabled": False},
    )
    otelkit.observe_active_users(lambda: {"1d": 12, "7d": 40})
    otelkit.observe_queue_depth(lambda: {"emails": 3})
    return app, handle, TestClient(app)


def test_counts_names_latency_and_exemplars_survive_the_pipeline(
    pipeline: tuple[Collector, Prometheus], trace_sink: tuple[OtlpSink, int], postgres_url: str, redis_url: str
) -> None:
    collector, prometheus = pipeline
    sink, _ = trace_sink
    _, handle, client = build_app(collector, postgres_url, redis_url)
    started = time.time()

    for item_id in range(37):
        assert client.get(f"/items/{item_id % 10}").status_code == 200
    for _ in range(4):
        assert client.get("/fail").status_code == 503
    for _ in range(5):
        client.get("/slow")
    for outcome in ["success"] * 6 + ["failure"] * 2:
        try:
            with otelkit.track_generation("sdxl"):
                if outcome == "failure":
                    raise RuntimeError("model crashed")
        except RuntimeError:
            pass
    otelkit.record_payment("stripe", "success", 20, "EUR")
    otelkit.record_payment("stripe", "success", 5.5, "EUR")
    otelkit.record_payment("stripe", "failure", 20, "EUR")
    for source in ["ads"] * 3 + ["organic"]:
        otelkit.record_registration(source)
    handle.force_flush()

    # Exact counts, as Prometheus stores them.
    prometheus.wait_for(f'http_requests_total{{{SEL},handler="/items/{{item_id}}",status="200"}}', lambda v: v == 37)
    assert prometheus.value(f'http_requests_total{{{SEL},handler="/fail",status="503"}}') == 4
    assert prometheus.value(f'sum(generation_requests_total{{{SEL},status="success"}})') == 6
    assert prometheus.value(f'sum(generation_requests_total{{{SEL},status="failure"}})') == 2
    assert prometheus.value(f'payment_requests_total{{{SEL},provider="stripe",status="success"}}') == 2
    assert prometheus.value(f'payment_requests_total{{{SEL},provider="stripe",status="failure"}}') == 1
    assert prometheus.value(f'payment_amount_total{{{SEL},provider="stripe",currency="EUR"}}') == 25.5
    assert prometheus.value(f'user_registrations_total{{{SEL},source="ads"}}') == 3
    assert prometheus.value(f'user_registrations_total{{{SEL},source="organic"}}') == 1
    assert prometheus.value(f"sum(generation_duration_seconds_count{{{SEL}}})") == 8
    assert prometheus.value(f"sum(database_connections_checkout_timeouts_total{{{SEL}}})") == 0
    assert prometheus.value(f"sum(cache_misses_total{{{SEL}}})") == 10
    assert prometheus.value(f"sum(cache_hits_total{{{SEL}}})") == 27

    # Every contract name, with exactly its label keys (plus job and instance).
    for name, keys in CONTRACT.items():
        series = prometheus.api("/api/v1/series", **{"match[]": f"{name}{{{SEL}}}"})
        assert series, f"{name} is missing in Prometheus"
        label_sets = {frozenset(set(s) - {"__name__", "job", "instance"}) for s in series}
        assert label_sets == {frozenset(keys)}, f"{name}: {label_sets}"
        assert {s["instance"] for s in series} == {handle.tracer_provider.resource.attributes["service.instance.id"]}

    # No suffix surprises: every otelkit-family name Prometheus holds is a contract name.
    names = set(prometheus.api("/api/v1/label/__name__/values", **{"match[]": f"{{{SEL}}}"}))
    families = ("http_", "generation_", "active_", "payment_", "user_", "queue_", "database_", "cache_", "system_")
    extra = {n for n in names if n.startswith(families)} - set(CONTRACT)
    assert extra == set(), extra

    # A second batch of slow requests, so the spec's rate()-based P95 has an increase to work on.
    for _ in range(5):
        client.get("/slow")
    handle.force_flush()
    prometheus.wait_for(f'http_request_duration_seconds_count{{{SEL},handler="/slow"}}', lambda v: v == 10)
    # The project's P95: the recording rule of stack/prometheus/rules/recording.yml, evaluated by Prometheus.
    prometheus.wait_for(f"{P95_RECORD}{{{SEL}}}", lambda v: v is not None and v > 0.1)
    time.sleep(2)  # two more evaluations: the value stays consistent
    p95 = prometheus.value(f"{P95_RECORD}{{{SEL}}}")
    # 10 of the 56 requests took 0.12 s and a bit, the rest far less: the 95th percentile is a slow one,
    # interpolated in the (0.1, 0.25] bucket.
    assert p95 is not None and 0.1 < p95 <= 0.25, p95

    # The collector's own metrics are scraped too (job "otel-collector" in prometheus.yml).
    assert prometheus.value('up{job="otel-collector"}') == 1
    accepted = prometheus.value('sum(otelcol_receiver_accepted_metric_points{job="otel-collector"})')
    assert accepted is not None and accepted > 0

    # Exemplars link the latency histogram to traces the collector forwarded.
    handle.shutdown()
    assert sink.wait_for(lambda: any(n == "GET /slow" for n in sink.span_names()))
    exemplars = prometheus.api(
        "/api/v1/query_exemplars",
        query=f"http_request_duration_seconds_bucket{{{SEL}}}",
        start=str(started - 60),
        end=str(time.time() + 60),
    )
    trace_ids = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
    received = {
        span.trace_id.hex()
        for request in sink.trace_requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    assert trace_ids, "no exemplar reached Prometheus"
    assert trace_ids <= received


@pytest.mark.parametrize(("protocol", "padding"), [("grpc", 10_000), ("http/protobuf", 50_000)])
def test_megabytes_of_spans_cross_both_hops_within_the_receivers_limits(
    pipeline: tuple[Collector, Prometheus], trace_sink: tuple[OtlpSink, int], protocol: str, padding: int
) -> None:
    """512 spans carrying stack traces or statements, one of them of 4 MB: 9 MB over gRPC (whose
    receivers take 4 MiB a message by default), 30 MB over HTTP (the collector's receiver takes
    20 MiB). The SDK splits its batch for the collector, and the collector splits its merged
    batch for the backend (the sink, a gRPC server with the default limit, as Tempo's), so every
    span arrives once."""
    collector, _ = pipeline
    sink, _ = trace_sink
    handle = otelkit.init(
        service={"name": "e2e-large-spans"},
        otlp={
            "endpoint": collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint,
            "protocol": protocol,
            "metrics": False,
        },
        prometheus={"enabled": False},
        metrics={"system_metrics": False},
    )
    prefix = f"large-{protocol}-"
    names = [f"{prefix}{index}" for index in range(512)]
    for index, name in enumerate(names):
        size = 3_999_000 if index == 100 else padding  # just under otelkit's limit: fits the collector's too
        with handle.tracer.start_as_current_span(name, attributes={"exception.stacktrace": "s" * size}):
            pass
    handle.force_flush()

    def arrived() -> list[str]:
        return [name for name in sink.span_names() if name.startswith(prefix)]

    assert sink.wait_for(lambda: len(arrived()) >= len(names), timeout=30), f"{len(arrived())} of {len(names)} arrived"
    assert sorted(arrived()) == sorted(names)  # each once
