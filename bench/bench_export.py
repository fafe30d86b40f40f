"""The OTLP metric path, measured in one run on this machine:

1. export cost: CPU milliseconds per export at 1k and 10k active series, through otelkit's own
   pipeline (``otelkit.init()`` with an OTLP endpoint: the push-and-pull reader, bound counters and
   histograms) and, as the baseline measured in the same run, a plain upstream MeterProvider with a
   PeriodicExportingMetricReader and OTLPMetricExporter recording the same series;
2. freshness: seconds from ``add()`` to the value being queryable in Prometheus, through otelkit,
   at short intervals and (``--default-intervals``, minutes) at the shipped defaults: 10 s export,
   15 s scrape;
3. intake: datapoints per second the collector accepts from a few gRPC clients pushing as fast as
   they can, and the samples per second Prometheus appends while scraping what they pushed.

    python bench/bench_export.py [--quick] [--default-intervals]

Needs the collector build (collector/build.sh) and Debian's prometheus. Everything binds to
127.0.0.1 on free ports and is stopped at the end. Each SDK measurement runs in a fresh process
(otelkit.init() configures a process once), the two implementations taking turns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.otlp_load import counter_request, metrics_client  # noqa: E402
from tests.support.pipeline import Collector, Prometheus, start_collector  # noqa: E402

CARDINALITY_LIMIT = 20_000  # above the 2 500 series a metric holds at 10k: nothing overflows


def populate_otelkit(endpoint: str, series: int, service: str, export_seconds: float = 3600.0) -> object:
    """otelkit as a service runs it (embedded /metrics on, so OTLP export goes through push-and-pull),
    with ``series`` active series: a quarter each of registrations, generation counts, in-flight
    generations and generation duration histograms."""
    import otelkit

    handle = otelkit.init(
        service={"name": service},
        otlp={"endpoint": endpoint, "export_interval_seconds": export_seconds, "traces": False},
        metrics={"cardinality_limit": CARDINALITY_LIMIT, "system_metrics": False, "sdk_self_metrics": False},
        tracing={"enabled": False},
        sentry={"enabled": False},
    )
    for index in range(series // 4):
        otelkit.record_registration(f"source-{index}")
        with otelkit.track_generation(f"model-{index}"):
            pass
    return handle


def populate_upstream(endpoint: str, series: int, service: str) -> object:
    """The same series through the SDK's instruments, read by the SDK's periodic reader and OTLP exporter."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    from otelkit._internal.exporters import CUMULATIVE
    from otelkit.settings import PrometheusSettings

    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, preferred_temporality=CUMULATIVE)
    limits = {kind: CARDINALITY_LIMIT for kind in (Counter, Histogram, UpDownCounter)}
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000, cardinality_limits=limits)
    buckets = ExplicitBucketHistogramAggregation(boundaries=PrometheusSettings().default_buckets)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": service}),
        views=[View(instrument_type=Histogram, aggregation=buckets)],
    )
    meter = provider.get_meter("bench")
    registrations = meter.create_counter("user_registrations_total")
    requests = meter.create_counter("generation_requests_total")
    active = meter.create_up_down_counter("active_generations")
    duration = meter.create_histogram("generation_duration_seconds", unit="s")
    for index in range(series // 4):
        registrations.add(1, {"source": f"source-{index}"})
        model = {"model_type": f"model-{index}"}
        active.add(1, model)
        started = time.perf_counter()
        duration.record(time.perf_counter() - started, {**model, "status": "success"})
        requests.add(1, {**model, "status": "success"})
        active.add(-1, model)
    return provider


def export_cost_worker(implementation: str, endpoint: str, series: int, exports: int) -> dict[str, float]:
    """Median CPU ms (every thread of this process) of one collect + encode + send."""
    service = f"bench-{implementation}-{series}"
    if implementation == "otelkit":
        handle = populate_otelkit(endpoint, series, service)
        provider = handle.meter_provider  # type: ignore[attr-defined]
    else:
        provider = populate_upstream(endpoint, series, service)
    provider.force_flush()  # first export: connection set up, outside the measurement
    costs = []
    for _ in range(exports):
        started = time.process_time()
        assert provider.force_flush(), "export failed"
        costs.append((time.process_time() - started) * 1000)
    provider.shutdown()
    return {"ms": statistics.median(costs)}


def freshness_worker(endpoint: str, prometheus_url: str, export_seconds: float, samples: int) -> dict[str, list[float]]:
    """Seconds from record_registration() until Prometheus answers the new total, ``samples`` times."""
    import otelkit

    service = f"fresh-{export_seconds:g}-{prometheus_url.rsplit(':', 1)[1]}"
    handle = otelkit.init(
        service={"name": service},
        otlp={"endpoint": endpoint, "export_interval_seconds": export_seconds, "traces": False},
        metrics={"system_metrics": False, "sdk_self_metrics": False},
        tracing={"enabled": False},
        sentry={"enabled": False},
        prometheus={"enabled": False},
    )
    query = f'{prometheus_url}/api/v1/query?query=user_registrations_total{{job="{service}",source="bench"}}'

    def current() -> float | None:
        with urllib.request.urlopen(query, timeout=10) as response:
            result = json.loads(response.read())["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    delays = []
    for value in range(1, samples + 1):
        time.sleep(0.37 * value % 1.0 * export_seconds)  # land at different points of the export and scrape cycles
        otelkit.record_registration("bench")
        started = time.monotonic()
        while current() != value:
            time.sleep(0.05)
        delays.append(time.monotonic() - started)
    handle.shutdown()
    return {"delays": delays}


def in_fresh_process(*argv: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", *argv], capture_output=True, text=True, timeout=3600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"worker {argv} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def scraped_counter(url: str, name: str) -> float:
    """The sum of every sample of ``name`` in a /metrics page."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def intake(collector: Collector, prometheus: Prometheus, seconds: float, series_sets: int) -> tuple[float, float]:
    """(points/s the collector accepted, samples/s Prometheus appended) while 2 gRPC clients push requests
    of 1000 points over ``series_sets`` distinct sets of series each, as fast as the collector takes them."""
    points_per_request, clients = 1000, 2
    stop = threading.Event()

    def push(client: int) -> None:
        payloads = [
            counter_request(
                f"load-{client}", "bench_intake_total", [f"{part}-{i}" for i in range(points_per_request)], 1.0
            )
            for part in range(series_sets)
        ]
        with metrics_client(collector.grpc_endpoint) as send:
            step = 0
            while not stop.is_set():
                send(payloads[step % series_sets])
                step += 1

    accepted = f"http://{collector.telemetry_address}/metrics"
    appended = f"{prometheus.url}/metrics"
    threads = [threading.Thread(target=push, args=(client,)) for client in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(6)  # every series exists and has been scraped before the measurement starts
    started = time.monotonic()
    points = scraped_counter(accepted, "otelcol_receiver_accepted_metric_points")
    samples = scraped_counter(appended, "prometheus_tsdb_head_samples_appended_total")
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    points = scraped_counter(accepted, "otelcol_receiver_accepted_metric_points") - points
    samples = scraped_counter(appended, "prometheus_tsdb_head_samples_appended_total") - samples
    stop.set()
    for thread in threads:
        thread.join()
    return points / elapsed, samples / elapsed


@contextlib.contextmanager
def pipeline(
    logs: Path, name: str, scrape_interval: str | None = "1s"
) -> Iterator[tuple[Collector, Prometheus | None]]:
    """A fresh collector (and a Prometheus scraping it, unless ``scrape_interval`` is None) per phase,
    so one phase's series neither weigh on the next one's scrapes nor expire during it."""
    directory = logs / name
    directory.mkdir()
    collector = start_collector(directory)
    prometheus = None
    try:
        prometheus = Prometheus(directory, collector, scrape_interval=scrape_interval) if scrape_interval else None
        yield collector, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter load")
    parser.add_argument(
        "--default-intervals", action="store_true", help="also measure freshness at 10 s export, 15 s scrape (minutes)"
    )
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "export-cost":
            print(json.dumps(export_cost_worker(rest[0], rest[1], int(rest[2]), int(rest[3]))))
        else:
            print(json.dumps(freshness_worker(rest[0], rest[1], float(rest[2]), int(rest[3]))))
        return

    rounds = 2 if args.quick else 3
    samples = 3 if args.quick else 6
    seconds = 5.0 if args.quick else 15.0
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        print(f"export cost: CPU ms per export (median of 5 exports, best of {rounds} fresh processes each)")
        print(f"  {'series':>6}  {'upstream SDK':>12}  {'otelkit':>8}  otelkit/upstream")
        with pipeline(logs, "export-cost", scrape_interval=None) as (collector, _):
            for series in (1_000, 10_000):
                costs: dict[str, list[float]] = {"upstream": [], "otelkit": []}
                for _ in range(rounds):
                    for implementation in costs:  # taking turns: drift on a shared machine hits both
                        argv = ("export-cost", implementation, collector.grpc_endpoint, str(series), "5")
                        costs[implementation].append(in_fresh_process(*argv)["ms"])
                upstream, ours = min(costs["upstream"]), min(costs["otelkit"])
                print(f"  {series:>6}  {upstream:>12.1f}  {ours:>8.1f}  {ours / upstream:.2f}x")

        print("freshness through otelkit: s from record_registration() to queryable in Prometheus")
        intervals = [(1.0, "1s"), (5.0, "1s")] + ([(10.0, "15s")] if args.default_intervals else [])
        for export_seconds, scrape in intervals:
            with pipeline(logs, f"fresh-{export_seconds:g}", scrape_interval=scrape) as (collector, prometheus):
                assert prometheus is not None
                argv = ("freshness", collector.grpc_endpoint, prometheus.url, str(export_seconds), str(samples))
                delays = in_fresh_process(*argv)["delays"]
            print(
                f"  export every {export_seconds:g} s, scrape every {scrape}: median "
                f"{statistics.median(delays):.1f} s, max {max(delays):.1f} s ({samples} samples)"
            )

        print(f"intake: 2 gRPC clients pushing requests of 1000 points as fast as they can, for {seconds:g} s")
        for series_sets, scrape in ((1, "1s"), (10, "5s")):
            with pipeline(logs, f"intake-{series_sets}", scrape_interval=scrape) as (collector, prometheus):
                assert prometheus is not None
                accepted, appended = intake(collector, prometheus, seconds, series_sets)
                duration = prometheus.value('scrape_duration_seconds{job="otel-services"}')
            print(
                f"  {2 * 1000 * series_sets:>6,} series, scraped every {scrape}: collector accepted {accepted:,.0f} "
                f"datapoints/s; Prometheus appended {appended:,.0f} samples/s (last scrape took {duration:.2f} s)"
            )


if __name__ == "__main__":
    main()
