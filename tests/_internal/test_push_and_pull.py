"""The embedded /metrics and the OTLP push read one aggregation, and neither takes data from the other."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import otelkit
from otelkit._internal.pipeline import build_pipeline
from otelkit._internal.push_and_pull import PushAndPullReader
from otelkit.settings import OtelkitSettings
from tests.support.otlp_sink import OtlpSink


def scraped_total(registry: CollectorRegistry | None) -> float:
    assert registry is not None
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith('payment_requests_total{provider="stripe",status="success"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("payment_requests_total not exposed")


def pushed_total(sink: OtlpSink) -> float:
    return sink.metrics()["payment_requests_total"][-1].sum.data_points[0].as_double


def test_scrapes_and_pushes_both_see_every_measurement(grpc_sink: tuple[OtlpSink, str]) -> None:
    sink, endpoint = grpc_sink
    handle = otelkit.init(otlp={"endpoint": endpoint, "export_interval_seconds": 60}, metrics={"system_metrics": False})
    otelkit.record_payment("stripe", "success", 5, "EUR")
    otelkit.record_payment("stripe", "success", 5, "EUR")
    assert scraped_total(handle.prometheus_registry) == 2
    assert scraped_total(handle.prometheus_registry) == 2  # a scrape is cumulative: it consumed nothing
    handle.force_flush()
    assert sink.wait_for(lambda: "payment_requests_total" in sink.metrics())
    assert pushed_total(sink) == 2  # the scrapes before it took nothing from the push
    otelkit.record_payment("stripe", "success", 5, "EUR")
    assert scraped_total(handle.prometheus_registry) == 3
    handle.shutdown()
    assert pushed_total(sink) == 3
    # Exactly one exposition of each series (a pushed collection must never land in the scrape queue).
    exposition = generate_latest(handle.prometheus_registry).decode()
    assert exposition.count('payment_requests_total{provider="stripe",status="success"}') <= 1


def test_one_reader_aggregates_for_both_outlets_unless_their_histograms_differ(
    grpc_sink: tuple[OtlpSink, str],
) -> None:
    pushing = {"otlp": {"endpoint": grpc_sink[1]}, "metrics": {"system_metrics": False}}
    shared = build_pipeline(OtelkitSettings(**pushing))
    exponential = build_pipeline(
        OtelkitSettings(**{**pushing, "metrics": {"system_metrics": False, "histogram_aggregation": "exponential"}})
    )
    try:
        assert [type(reader) for reader in shared.readers] == [PushAndPullReader]
        # Prometheus needs explicit buckets while the push sends exponential ones: two aggregations.
        assert len(exponential.readers) == 2 and not any(isinstance(r, PushAndPullReader) for r in exponential.readers)
    finally:
        for pipeline in (shared, exponential):
            pipeline.shutdown(timeout_seconds=1)


def test_exemplars_a_scrape_collected_still_reach_the_push(grpc_sink: tuple[OtlpSink, str]) -> None:
    """The SDK's default reservoirs empty when collected; the scrape must not take them from the push."""
    sink, endpoint = grpc_sink
    handle = otelkit.init(otlp={"endpoint": endpoint, "export_interval_seconds": 60}, metrics={"system_metrics": False})
    meter = handle.meter_provider.get_meter("shop")
    orders = meter.create_counter("orders")
    payload = meter.create_histogram("payload", unit="By")
    with handle.tracer.start_as_current_span("checkout") as span:
        orders.add(1, {"shop": "eu"})
        payload.record(512, {"shop": "eu"})
    trace_id = span.get_span_context().trace_id
    assert "orders_total" in generate_latest(handle.prometheus_registry).decode()  # the scrape collected first
    handle.force_flush()
    assert sink.wait_for(lambda: {"orders", "payload"} <= set(sink.metrics()))
    pushed_orders = sink.metrics()["orders"][-1].sum.data_points[0]
    pushed_payload = sink.metrics()["payload"][-1].histogram.data_points[0]
    for point in (pushed_orders, pushed_payload):
        assert [int.from_bytes(e.trace_id, "big") for e in point.exemplars] == [trace_id]
    handle.shutdown()


def test_the_otlp_exponential_variable_keeps_prometheus_explicit(
    grpc_sink: tuple[OtlpSink, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2_exponential_bucket_histogram")
    sink, endpoint = grpc_sink
    handle = otelkit.init(otlp={"endpoint": endpoint, "export_interval_seconds": 60}, metrics={"system_metrics": False})
    handle.meter_provider.get_meter("shop").create_histogram("payload", unit="By").record(512)
    assert 'payload_bytes_bucket{le="+Inf"} 1.0' in generate_latest(handle.prometheus_registry).decode()
    handle.force_flush()
    assert sink.wait_for(lambda: "payload" in sink.metrics())
    assert sink.metrics()["payload"][-1].WhichOneof("data") == "exponential_histogram"  # the variable still counts
    handle.shutdown()


def test_a_shut_down_pipeline_leaves_the_registry(grpc_sink: tuple[OtlpSink, str]) -> None:
    handle = otelkit.init(otlp={"endpoint": grpc_sink[1]}, metrics={"system_metrics": False})
    otelkit.record_payment("stripe", "success", 5, "EUR")
    registry = handle.prometheus_registry
    assert "payment_requests_total" in generate_latest(registry).decode()
    handle.shutdown()
    assert "payment_requests_total" not in generate_latest(registry).decode()


def test_a_kept_exemplar_returns_to_its_own_series_only(grpc_sink: tuple[OtlpSink, str]) -> None:
    """Two meters named alike (versions 1 and 2), each with an ``orders`` counter: no exemplar crosses over."""
    sink, endpoint = grpc_sink
    handle = otelkit.init(otlp={"endpoint": endpoint, "export_interval_seconds": 60}, metrics={"system_metrics": False})
    v1 = handle.meter_provider.get_meter("shop", "1").create_counter("orders")
    v2 = handle.meter_provider.get_meter("shop", "2").create_counter("orders")
    with handle.tracer.start_as_current_span("checkout"):
        v1.add(1)
    v2.add(1)  # no span: no exemplar
    generate_latest(handle.prometheus_registry)  # the scrape takes v1's exemplar from the reservoir
    handle.force_flush()
    assert sink.wait_for(lambda: len(sink.metrics().get("orders", [])) >= 2)
    by_version = {
        scope_metrics.scope.version: metric.sum.data_points[0]
        for request in sink.metric_requests
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == "orders"
    }
    assert len(by_version["1"].exemplars) == 1 and len(by_version["2"].exemplars) == 0
    handle.shutdown()
