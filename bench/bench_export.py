"""The OTLP metric path, measured in one run on this machine:

1. the SDK's export cost: CPU milliseconds per export at 1k and 10k active series;
2. freshness: seconds from ``add()`` to the value being queryable in Prometheus, at two
   export/scrape interval settings;
3. the collector's sustained intake: datapoints per second it accepts and hands to its
   Prometheus exporter, pushed by a few gRPC clients as fast as they can.

    python bench/bench_export.py [--quick]

Needs the collector build (collector/build.sh) and Debian's prometheus. Everything binds to
127.0.0.1 on free ports and is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402

from otelkit._internal.exporters import CUMULATIVE  # noqa: E402
from tests.support.otlp_load import counter_request, metrics_client  # noqa: E402
from tests.support.pipeline import Collector, Prometheus, start_collector  # noqa: E402


def export_cost(collector: Collector, series: int, exports: int) -> float:
    """Median CPU ms of one collect+encode+send with ``series`` counter series and as many histogram series."""
    exporter = OTLPMetricExporter(endpoint=collector.grpc_endpoint, insecure=True, preferred_temporality=CUMULATIVE)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": f"bench-{series}"}))
    meter = provider.get_meter("bench")
    counter = meter.create_counter("bench_requests_total")
    histogram = meter.create_histogram("bench_duration_seconds", unit="s")
    for index in range(series // 2):
        attributes = {"handler": f"/route/{index}", "method": "GET"}
        counter.add(1, attributes)
        histogram.record(0.1, attributes)
    costs = []
    for _ in range(exports):
        started = time.process_time()
        reader.force_flush()
        costs.append((time.process_time() - started) * 1000)
    provider.shutdown()
    return statistics.median(costs)


def freshness(collector: Collector, prometheus: Prometheus, export_seconds: float, samples: int) -> list[float]:
    """Seconds from add() until Prometheus answers the new value, ``samples`` times."""
    exporter = OTLPMetricExporter(endpoint=collector.grpc_endpoint, insecure=True, preferred_temporality=CUMULATIVE)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=export_seconds * 1000)
    service = f"fresh-{export_seconds:g}"
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": service}))
    counter = provider.get_meter("bench").create_counter("bench_fresh_total")
    delays = []
    for value in range(1, samples + 1):
        time.sleep(0.37 * value % 1.0)  # land at different points of the export and scrape cycles
        counter.add(1)
        started = time.monotonic()
        while prometheus.value(f'bench_fresh_total{{job="{service}"}}') != value:
            time.sleep(0.05)
        delays.append(time.monotonic() - started)
    provider.shutdown()
    return delays


def collector_intake(collector: Collector, seconds: float, clients: int, points_per_request: int) -> float:
    """Accepted datapoints per second, from the collector's own otelcol_receiver_accepted_metric_points."""

    def accepted() -> float:
        import urllib.request

        text = urllib.request.urlopen(f"http://{collector.telemetry_address}/metrics", timeout=5).read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("otelcol_receiver_accepted_metric_points")
        )

    stop = threading.Event()

    def push(client: int) -> None:
        series = [str(i) for i in range(points_per_request)]
        payloads = [counter_request(f"load-{client}", "bench_intake_total", series, float(step)) for step in (1, 2, 3)]
        with metrics_client(collector.grpc_endpoint) as send:
            step = 0
            while not stop.is_set():
                send(payloads[step % 3])
                step += 1

    before = accepted()
    threads = [threading.Thread(target=push, args=(client,)) for client in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    time.sleep(1.5)  # the collector's own metrics are refreshed periodically
    return (accepted() - before) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        collector = start_collector(logs)
        prometheus = Prometheus(logs, collector)
        try:
            print("export cost (CPU ms per export, median of 5; half counter, half histogram series)")
            for series in (1_000, 10_000):
                print(f"  {series:>6} series: {export_cost(collector, series, exports=5):7.1f} ms")
            print("freshness (s from add() to queryable; Prometheus scrapes every 1 s)")
            samples = 3 if args.quick else 6
            for export_seconds in (1.0, 5.0):
                delays = freshness(collector, prometheus, export_seconds, samples)
                print(
                    f"  export every {export_seconds:g} s: median {statistics.median(delays):.2f}, "
                    f"max {max(delays):.2f} ({samples} samples)"
                )
            seconds = 5.0 if args.quick else 15.0
            rate = collector_intake(collector, seconds, clients=2, points_per_request=1000)
            print(f"collector intake: {rate:,.0f} datapoints/s accepted (2 gRPC clients, 1000 points a request)")
        finally:
            prometheus.stop()
            collector.stop()


if __name__ == "__main__":
    main()
