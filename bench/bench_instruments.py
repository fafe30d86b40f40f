"""Hot-path cost of otelkit's helpers against the raw OTel SDK and prometheus_client, in one run.

    python bench/bench_instruments.py [--number 200000] [--repeat 7]

Each figure is the best of ``--repeat`` timings of ``--number`` calls (the least disturbed by
the other tenants of a shared machine); ratios compare figures from this same run.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable

import prometheus_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

import otelkit
from otelkit.settings import DEFAULT_BUCKETS


def best_per_call(func: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    # prometheus_client, its own registry
    registry = prometheus_client.CollectorRegistry()
    prom_counter = prometheus_client.Counter("bench_requests", "", ["a", "b", "c"], registry=registry)
    prom_child = prom_counter.labels("x", "y", "z")
    prom_hist = prometheus_client.Histogram("bench_seconds", "", ["a", "b"], registry=registry, buckets=DEFAULT_BUCKETS)
    prom_registrations = prometheus_client.Counter("prom_registrations", "", ["source"], registry=registry)
    prom_registrations_child = prom_registrations.labels("ads")
    prom_payments = prometheus_client.Counter("prom_payments", "", ["provider", "status"], registry=registry)
    prom_amount = prometheus_client.Counter("prom_amount", "", ["provider", "currency"], registry=registry)
    prom_payments_child = prom_payments.labels("stripe", "success")
    prom_amount_child = prom_amount.labels("stripe", "EUR")
    prom_generations = prometheus_client.Counter("prom_generations", "", ["status", "model_type"], registry=registry)
    prom_active = prometheus_client.Gauge("prom_active", "", ["model_type"], registry=registry)
    prom_duration = prometheus_client.Histogram(
        "prom_duration", "", ["model_type", "status"], registry=registry, buckets=DEFAULT_BUCKETS
    )
    prom_generations_child = prom_generations.labels("success", "sdxl")
    prom_active_child = prom_active.labels("sdxl")
    prom_duration_child = prom_duration.labels("sdxl", "success")

    def prom_payment_labels() -> None:
        prom_payments.labels("stripe", "success").inc()
        prom_amount.labels("stripe", "EUR").inc(9.99)

    def prom_payment_children() -> None:
        prom_payments_child.inc()
        prom_amount_child.inc(9.99)

    def prom_generation_labels() -> None:
        prom_active.labels("sdxl").inc()
        started = time.perf_counter()
        duration = time.perf_counter() - started
        prom_generations.labels("success", "sdxl").inc()
        prom_duration.labels("sdxl", "success").observe(duration)
        prom_active.labels("sdxl").dec()

    def prom_generation_children() -> None:
        prom_active_child.inc()
        started = time.perf_counter()
        duration = time.perf_counter() - started
        prom_generations_child.inc()
        prom_duration_child.observe(duration)
        prom_active_child.dec()

    # the raw OTel SDK, configured as otelkit configures it (buckets view, a reader attached)
    provider = MeterProvider(
        metric_readers=[InMemoryMetricReader()],
        views=[View(instrument_unit="s", aggregation=ExplicitBucketHistogramAggregation(DEFAULT_BUCKETS))],
    )
    meter = provider.get_meter("bench")
    sdk_counter = meter.create_counter("sdk_requests_total")
    sdk_amount = meter.create_counter("sdk_amount_total")
    sdk_updown = meter.create_up_down_counter("sdk_active")
    sdk_hist = meter.create_histogram("sdk_duration_seconds", unit="s")
    attrs3 = {"a": "x", "b": "y", "c": "z"}

    def sdk_payment() -> None:
        sdk_counter.add(1, {"provider": "stripe", "status": "success"})
        sdk_amount.add(9.99, {"provider": "stripe", "currency": "EUR"})

    def sdk_generation() -> None:
        sdk_updown.add(1, {"model_type": "sdxl"})
        started = time.perf_counter()
        duration = time.perf_counter() - started
        sdk_counter.add(1, {"status": "success", "model_type": "sdxl"})
        sdk_hist.record(duration, {"model_type": "sdxl", "status": "success"})
        sdk_updown.add(-1, {"model_type": "sdxl"})

    handle = otelkit.init(metrics={"system_metrics": False}, service={"name": "bench"})
    registrations = handle.business.user_registrations
    cached_cell = registrations.cell(("ads",))
    durations = handle.business.generation_duration

    def otelkit_generation() -> None:
        with otelkit.track_generation("sdxl"):
            pass

    cases: list[tuple[str, Callable[[], object]]] = [
        ("prometheus_client labels(...).inc()", lambda: prom_counter.labels("x", "y", "z").inc()),
        ("prometheus_client cached child .inc()", prom_child.inc),
        ("prometheus_client labels(...).observe()", lambda: prom_hist.labels("x", "y").observe(0.2)),
        ("prometheus_client cached child .observe()", lambda: prom_duration_child.observe(0.2)),
        ("prometheus_client registration labels(1).inc()", lambda: prom_registrations.labels("ads").inc()),
        ("prometheus_client registration child .inc()", prom_registrations_child.inc),
        ("prometheus_client payment, labels()", prom_payment_labels),
        ("prometheus_client payment, children", prom_payment_children),
        ("prometheus_client generation, labels()", prom_generation_labels),
        ("prometheus_client generation, children", prom_generation_children),
        ("OTel SDK counter.add(1, 3 attributes)", lambda: sdk_counter.add(1, attrs3)),
        ("OTel SDK counter.add(1, 1 attribute)", lambda: sdk_counter.add(1, {"source": "ads"})),
        ("OTel SDK histogram.record(x, 2 attributes)", lambda: sdk_hist.record(0.2, {"a": "x", "b": "y"})),
        ("OTel SDK: payment as 2 counter.add()", sdk_payment),
        ("OTel SDK: generation as 4 calls + timing", sdk_generation),
        ("otelkit record_registration(source)", lambda: otelkit.record_registration("ads")),
        ("otelkit bound cell .add()", cached_cell.add),
        ("otelkit histogram cell(...).observe()", lambda: durations.cell(("sdxl", "success")).observe(0.2)),
        ("otelkit record_payment(...)", lambda: otelkit.record_payment("stripe", "success", 9.99, "EUR")),
        ("otelkit with track_generation(...)", otelkit_generation),
    ]
    results = {name: best_per_call(func, args.number, args.repeat) for name, func in cases}
    handle.shutdown()

    width = max(len(name) for name in results)
    print(f"{'case':<{width}}  {'ns/call':>9}")
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds * 1e9:9.0f}")

    def ratio(a: str, b: str) -> str:
        return f"{results[a] / results[b]:.2f}x"

    print("\nratios (lower is better for otelkit)")
    registration, payment, generation = (
        "otelkit record_registration(source)",
        "otelkit record_payment(...)",
        "otelkit with track_generation(...)",
    )
    histogram = "otelkit histogram cell(...).observe()"
    comparisons = [
        # like for like against the raw OTel SDK (the target: at most 1.20x)
        (registration, "OTel SDK counter.add(1, 1 attribute)", "counter helper vs SDK add, 1 attribute"),
        (histogram, "OTel SDK histogram.record(x, 2 attributes)", "histogram helper vs SDK record, 2 attrs"),
        (payment, "OTel SDK: payment as 2 counter.add()", "payment helper vs raw SDK"),
        (generation, "OTel SDK: generation as 4 calls + timing", "generation helper vs raw SDK"),
        # against prometheus_client, labels() each call and the cached child (stretch: 3x the child)
        (registration, "prometheus_client registration labels(1).inc()", "counter helper vs prom labels().inc()"),
        (registration, "prometheus_client registration child .inc()", "counter helper vs prom cached child"),
        (histogram, "prometheus_client labels(...).observe()", "histogram helper vs prom labels().observe()"),
        (histogram, "prometheus_client cached child .observe()", "histogram helper vs prom cached child"),
        (payment, "prometheus_client payment, labels()", "payment helper vs prom labels()"),
        (payment, "prometheus_client payment, children", "payment helper vs prom cached children"),
        (generation, "prometheus_client generation, labels()", "generation helper vs prom labels()"),
        (generation, "prometheus_client generation, children", "generation helper vs prom cached children"),
        ("otelkit bound cell .add()", "prometheus_client cached child .inc()", "bound cell vs cached child"),
        # the reference point
        ("OTel SDK counter.add(1, 3 attributes)", "prometheus_client cached child .inc()", "SDK add vs cached child"),
    ]
    for a, b, label in comparisons:
        print(f"  {label:<44} {ratio(a, b):>7}")


if __name__ == "__main__":
    main()
