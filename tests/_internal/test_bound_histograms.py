"""In-process histograms report what the SDK's histogram would, through every otelkit reader."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

import otelkit
from otelkit._internal.bound_histograms import BoundHistograms
from otelkit._internal.overflow import OVERFLOW_ATTRIBUTE, OverflowWarner
from otelkit._internal.pipeline import build_pipeline
from otelkit.settings import OtelkitSettings
from tests.support.otlp_sink import OtlpSink, start_grpc_sink

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SCOPE = InstrumentationScope("otelkit")
SAMPLED = SpanContext(0xABC, 0x12, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
UNSAMPLED = SpanContext(0xDEF, 0x34, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))


def histograms(limit: int = 100) -> BoundHistograms:
    return BoundHistograms(SCOPE, cardinality_limit=limit, warner=OverflowWarner(limit))


def create(bound: BoundHistograms) -> object:
    return bound.create("work_seconds", ("queue",), unit="s", description="Work.", boundaries=BOUNDS)


def only_point(bound: BoundHistograms) -> HistogramDataPoint:
    (point,) = points(bound)
    return point


def points(bound: BoundHistograms) -> list[HistogramDataPoint]:
    data = bound.merge_into(empty_collection())
    metrics = [m for s in data.resource_metrics[0].scope_metrics for m in s.metrics if m.name == "work_seconds"]
    return list(metrics[0].data.data_points) if metrics else []


def empty_collection() -> MetricsData:
    """What the SDK collects for a provider with one unrelated metric, from a real MeterProvider."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "t"}), metric_readers=[reader])
    provider.get_meter("other").create_counter("other_total").add(1)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return data


def test_buckets_count_sum_min_max_match_the_sdk_histogram() -> None:
    values = [0.0, 0.005, 0.0051, 0.01, 0.3, 0.5, 0.99, 1.0, 1.5, 7.0] + [random.uniform(0, 2) for _ in range(500)]
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        views=[View(instrument_name="work_seconds", aggregation=ExplicitBucketHistogramAggregation(BOUNDS))],
    )
    sdk_histogram = provider.get_meter("m").create_histogram("work_seconds", unit="s")
    bound = histograms()
    cell = create(bound).cell(("emails",))
    for value in values:
        sdk_histogram.record(value, {"queue": "emails"})
        cell.observe(value, UNSAMPLED)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    (expected,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    got = only_point(bound)
    assert list(got.bucket_counts) == list(expected.bucket_counts)  # a value on a bound falls in that bound's bucket
    assert list(got.explicit_bounds) == list(expected.explicit_bounds)
    assert (got.count, got.min, got.max) == (expected.count, expected.min, expected.max)
    assert got.sum == pytest.approx(expected.sum)
    assert dict(got.attributes) == {"queue": "emails"}


def test_the_latest_sampled_measurement_per_bucket_is_the_exemplar() -> None:
    bound = histograms()
    cell = create(bound).cell(("emails",))
    cell.observe(0.2, SAMPLED)
    later = SpanContext(0xABD, 0x13, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    cell.observe(0.21, later)  # same bucket (0.1, 0.25]: replaces the first
    cell.observe(0.7, UNSAMPLED)  # an unsampled request links to no trace
    cell.observe(3.0, SAMPLED)  # the +Inf bucket
    exemplars = only_point(bound).exemplars
    assert [(e.value, e.trace_id, e.span_id) for e in exemplars] == [(0.21, 0xABD, 0x13), (3.0, 0xABC, 0x12)]
    assert not exemplars[0].filtered_attributes
    # Kept across collections (the SDK's reservoir would empty itself).
    assert len(only_point(bound).exemplars) == 2


def test_without_a_span_context_the_current_span_is_the_exemplar() -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan

    bound = histograms()
    cell = create(bound).cell(("emails",))
    with trace.use_span(NonRecordingSpan(SAMPLED)):
        cell.observe(0.2)
    cell.observe(0.3)  # no current span: nothing to link
    assert [(e.trace_id, e.span_id) for e in only_point(bound).exemplars] == [(0xABC, 0x12)]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("always_off", []), ("always_on", [(0xDEF, 0x34), (None, None)])],  # linked to its span, when it has one
)
def test_the_sdk_exemplar_filter_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch, setting: str, expected: list[tuple[int | None, int | None]]
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", setting)
    bound = histograms()
    cell = create(bound).cell(("emails",))
    cell.observe(0.2, UNSAMPLED)
    cell.observe(0.7)  # no current span at all
    assert [(e.trace_id, e.span_id) for e in only_point(bound).exemplars] == expected


def test_the_sdk_fallback_records_an_unhashable_label_value_by_its_string_form() -> None:
    from otelkit._internal.bound_histograms import SdkHistogramCells

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    cells = SdkHistogramCells(provider.get_meter("m"), "work_seconds", ("queue",), unit="s", description="Work.")
    cells.cell((["a"],)).observe(0.1)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    (point,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert dict(point.attributes) == {"queue": "['a']"}


def test_attribute_sets_past_the_limit_fold_into_one_overflow_series(caplog: pytest.LogCaptureFixture) -> None:
    bound = histograms(limit=2)
    work = create(bound)
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        for queue in ("a", "b", "c", "d", "c"):
            work.cell((queue,)).observe(0.1, UNSAMPLED)
    by_attributes = {tuple(sorted(p.attributes.items())): p.count for p in points(bound)}
    assert by_attributes == {(("queue", "a"),): 1, (("queue", "b"),): 1, ((OVERFLOW_ATTRIBUTE, True),): 3}
    assert sum("work_seconds reached its cardinality limit" in r.getMessage() for r in caplog.records) == 1


def test_merged_under_the_scope_the_collection_already_reports_or_a_new_one() -> None:
    bound = histograms()
    create(bound)
    collected = empty_collection()
    assert bound.merge_into(collected) is collected  # nothing observed: the collection as it was
    create(bound).cell(("emails",)).observe(0.1, UNSAMPLED)
    merged = bound.merge_into(collected)
    scopes = {s.scope.name: [m.name for m in s.metrics] for s in merged.resource_metrics[0].scope_metrics}
    assert scopes == {"other": ["other_total"], "otelkit": ["work_seconds"]}
    assert merged.resource_metrics[0].resource == collected.resource_metrics[0].resource
    again = bound.merge_into(merged)  # the scope exists now: appended to it, not a second scope
    names = [s.scope.name for s in again.resource_metrics[0].scope_metrics]
    assert names.count("otelkit") == 1


def test_concurrent_observations_are_all_counted() -> None:
    bound = histograms()
    work = create(bound)

    def observe() -> None:
        for i in range(5000):
            work.cell((f"q{i % 3}",)).observe(0.001 * (i % 700), UNSAMPLED)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(p.count for p in points(bound)) == 20000
    assert all(sum(p.bucket_counts) == p.count for p in points(bound))


# -- in the pipeline -----------------------------------------------------------------------------


@pytest.fixture
def sink_endpoint() -> Iterator[str]:
    server, port = start_grpc_sink(OtlpSink())
    yield f"http://127.0.0.1:{port}"
    server.stop(grace=None)


def test_used_only_where_every_reader_wants_explicit_buckets(
    monkeypatch: pytest.MonkeyPatch, sink_endpoint: str
) -> None:
    pushing = {"otlp": {"endpoint": sink_endpoint}, "metrics": {"system_metrics": False}}
    cases = {
        "push and pull": (OtelkitSettings(**pushing), True),
        "pull only": (OtelkitSettings(metrics={"system_metrics": False}), True),
        "push only": (OtelkitSettings(**pushing, prometheus={"enabled": False}), True),
        "exponential": (
            OtelkitSettings(
                otlp=pushing["otlp"], metrics={"system_metrics": False, "histogram_aggregation": "exponential"}
            ),
            False,
        ),
    }
    for name, (settings, expected) in cases.items():
        pipeline = build_pipeline(settings)
        assert (pipeline.bound_histograms is not None) is expected, name
        pipeline.shutdown(5)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2_exponential_bucket_histogram")
    pipeline = build_pipeline(OtelkitSettings(**pushing))
    assert pipeline.bound_histograms is None  # the push would otherwise lose the exponential buckets it asks for
    pipeline.shutdown(5)


def test_the_http_duration_histogram_is_exposed_with_exact_counts(
    otelkit_capture: otelkit.testing.MetricsCapture,
) -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    handle = otelkit.init(app, metrics={"system_metrics": False})
    assert handle._pipeline.bound_histograms is not None  # the capture's reader merges them too
    client = TestClient(app)
    for i in range(7):
        client.get(f"/items/{i}")
    snapshot = otelkit_capture.histogram("http_request_duration_seconds", method="GET", handler="/items/{item_id}")
    assert snapshot.count == 7
