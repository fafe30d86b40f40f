"""Several workers, and a collector that dies mid-load: nothing fails, nothing is lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.support.pipeline import Collector, Prometheus, serve_worker_app, start_collector
from tests.support.ports import held_ports
from tests.support.processes import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def collector(logs: Path) -> Iterator[Collector]:
    collector = start_collector(logs)
    yield collector
    collector.stop()


@pytest.fixture
def prometheus(logs: Path, collector: Collector) -> Iterator[Prometheus]:
    prometheus = Prometheus(logs, collector)
    yield prometheus
    prometheus.stop()


def test_two_workers_sum_to_the_requests_sent(logs: Path, collector: Collector, prometheus: Prometheus) -> None:
    server, base = serve_worker_app(logs, collector, "two-workers", workers=2)
    try:
        sent = 0
        for _ in range(300):
            with httpx.Client(base_url=base) as client:  # a new connection each time: both workers take some
                assert client.get("/ping").status_code == 200
            sent += 1
        job = 'job="two-workers"'
        requests = f'sum(http_requests_total{{{job},handler="/ping"}})'
        # Readiness was probed on /health, which is excluded from metrics: the sum is exactly what was sent.
        prometheus.wait_for(requests, lambda v: v == sent)
        time.sleep(3)  # three more scrapes and exports: the sum stays where it is
        assert prometheus.value(requests) == sent
        per_worker = prometheus.query(f'http_requests_total{{{job},handler="/ping"}}')
        instances = {series["metric"]["instance"] for series in per_worker}
        assert len(per_worker) == 2 and len(instances) == 2, f"each worker is its own instance: {per_worker}"
        assert all(float(series["value"][1]) > 0 for series in per_worker)
    finally:
        server.stop()


def test_two_workers_serving_the_embedded_endpoint_are_warned_at_init(logs: Path, collector: Collector) -> None:
    server, _ = serve_worker_app(logs, collector, "warned-workers", workers=2, embedded_endpoint=True)
    try:
        warning = "this process is one of 2 server workers and serves /metrics itself"
        server.wait_until(lambda: server.log().count(warning) == 2, timeout=30, what="warned by both workers")
    finally:
        server.stop()


def test_collector_down_for_30s_loses_no_request_and_no_count(
    logs: Path, collector: Collector, prometheus: Prometheus
) -> None:
    # A span queue small enough that the outage overflows it (the default 2048 drains as failed exports).
    queue = {"OTELKIT_TRACING__MAX_QUEUE_SIZE": "256", "OTELKIT_TRACING__MAX_EXPORT_BATCH_SIZE": "64"}
    server, base = serve_worker_app(logs, collector, "survivor", settings=queue)
    app = psutil.Process(server.process.pid)
    failures: list[str] = []
    sent = 0
    stop = threading.Event()
    restarted: Server | None = None

    def load() -> None:
        nonlocal sent
        try:
            with httpx.Client(base_url=base, timeout=5) as client:
                while not stop.is_set():
                    response = client.get("/ping")
                    if response.status_code != 200:
                        failures.append(str(response.status_code))
                    sent += 1
                    time.sleep(0.002)
        except Exception as error:  # a load thread that dies must fail the test, not stop counting quietly
            failures.append(repr(error))

    try:
        job = 'job="survivor"'
        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(3)
        os.killpg(collector.server.process.pid, signal.SIGKILL)
        collector.server.process.wait()
        rss_at_kill = app.memory_info().rss
        with held_ports(collector_addresses(collector)):
            time.sleep(30)
        rss_after_outage = app.memory_info().rss
        restarted = restart(collector, logs)
        time.sleep(3)
        stop.set()
        worker.join()
        assert failures == []
        assert sent > 1000
        # Bounded: the span queue is capped and metrics are cumulative points, not a backlog.
        assert rss_after_outage - rss_at_kill < 40 * 2**20
        prometheus.wait_for(f'sum(http_requests_total{{{job},handler="/ping"}})', lambda v: v == sent, timeout=60)
        # Every request made one span; each is accounted for by the SDK's own counters, exported through
        # the restarted pipeline: handed to the exporter (successfully or not) or dropped on a full queue.
        spans = f"otel_sdk_processor_span_processed_total{{{job}}}"
        prometheus.wait_for(f"sum({spans})", lambda v: v == sent, timeout=60)
        dropped = prometheus.value(f'sum(otel_sdk_processor_span_processed_total{{{job},error_type="queue_full"}})')
        assert dropped is not None and dropped > 0, "the outage overflowed the span queue: the drops are counted"
        exported = f"otel_sdk_exporter_span_exported_total{{{job}}}"
        failed = prometheus.value(f'sum(otel_sdk_exporter_span_exported_total{{{job},error_type!=""}})')
        assert failed is not None and failed > 0, "exports to the dead collector are counted as failed"
        assert prometheus.value(f"sum({exported})") + dropped == sent
        print(f"spans: {sent} made, {dropped:.0f} dropped on a full queue, {failed:.0f} failed to export")
    finally:
        stop.set()
        server.stop()
        if restarted is not None:
            restarted.stop()


def collector_addresses(collector: Collector) -> list[str]:
    urls = (collector.grpc_endpoint, collector.http_endpoint, collector.health_url)
    return [*(urlsplit(url).netloc for url in urls), collector.exporter_address, collector.telemetry_address]


def restart(collector: Collector, log_dir: Path) -> Server:
    """The same binary on the same ports, as a supervisor would restart it."""
    server = Server("collector-restarted", collector.server.argv, log_dir, env=collector.server.env)
    server.wait_http(collector.health_url)
    return server
