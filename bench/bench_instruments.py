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

    def otelkit_generation() -> None:
        with otelkit.track_generation("sdxl"):
            pass

    cases: list[tuple[str, Callable[[], object]]] = [
        ("prometheus_client labels(...).inc()", lambda: prom_counter.labels("x", "y", "z").inc()),
        ("prometheus_client cached child .inc()", prom_child.inc),
        ("prometheus_client labels(...).observe()", lambda: prom_hist.labels("x", "y").observe(0.2)),
        ("OTel SDK counter.add(1, 3 attributes)", lambda: sdk_counter.add(1, attrs3)),
        ("OTel SDK histogram.record(x, 2 attributes)", lambda: sdk_hist.record(0.2, {"a": "x", "b": "y"})),
        ("OTel SDK: payment as 2 counter.add()", sdk_payment),
        ("OTel SDK: generation as 4 calls + timing", sdk_generation),
        ("otelkit record_registration(source)", lambda: otelkit.record_registration("ads")),
        ("otelkit bound cell .add()", cached_cell.add),
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
    comparisons = [
        (
            "otelkit record_payment(...)",
            "OTel SDK: payment as 2 counter.add()",
            "payment helper vs raw SDK",
        ),
        (
            "otelkit with track_generation(...)",
            "OTel SDK: generation as 4 calls + timing",
            "generation helper vs raw SDK",
        ),
        ("otelkit record_registration(source)", "OTel SDK counter.add(1, 3 attributes)", "counter helper vs SDK add"),
        (
            "otelkit record_registration(source)",
            "prometheus_client cached child .inc()",
            "counter helper vs cached child",
        ),
        ("otelkit bound cell .add()", "prometheus_client cached child .inc()", "bound cell vs cached child"),
        ("OTel SDK counter.add(1, 3 attributes)", "prometheus_client cached child .inc()", "SDK add vs cached child"),
    ]
    for a, b, label in comparisons:
        print(f"  {label:<42} {ratio(a, b):>7}")


if __name__ == "__main__":
    main()
