"""Several workers, and a collector that dies mid-load: nothing fails, nothing is lost."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.collector import REPO
from tests.support.pipeline import Collector, Prometheus, start_collector
from tests.support.ports import free_port
from tests.support.processes import Server, http_ok

pytestmark = pytest.mark.slow


def serve(log_dir: Path, collector: Collector, service: str, workers: int) -> tuple[Server, str]:
    port = free_port()
    env = {
        "PYTHONPATH": str(REPO),
        "OTELKIT_SERVICE__NAME": service,
        "OTELKIT_OTLP__ENDPOINT": collector.grpc_endpoint,
        "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "1",
        "OTELKIT_OTLP__TIMEOUT_SECONDS": "2",
        "OTELKIT_PROMETHEUS__ENABLED": "false",
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.support.worker_app:app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    server = Server(f"app-{service}", argv, log_dir, env=env)
    base = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: http_ok(f"{base}/health"), what="serving")  # excluded from metrics
    return server, base


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
    server, base = serve(logs, collector, "two-workers", workers=2)
    try:
        sent = 0
        for _ in range(300):
            with httpx.Client(base_url=base) as client:  # a new connection each time: both workers take some
                assert client.get("/ping").status_code == 200
            sent += 1
        job = 'job="two-workers"'
        prometheus.wait_for(
            f"count(count by (instance) (system_process_resident_memory_bytes{{{job}}}))", lambda v: v == 2
        )
        # the readiness probes above also hit /ping before the count started
        total = prometheus.wait_for(
            f'sum(http_requests_total{{{job},handler="/ping"}})', lambda v: v is not None and v >= sent
        )
        probes = total - sent
        assert 0 <= probes <= 50
        per_worker = prometheus.query(f'http_requests_total{{{job},handler="/ping"}}')
        assert len(per_worker) == 2, "each worker is its own instance"
    finally:
        server.stop()


def test_collector_down_for_30s_loses_no_request_and_no_count(
    logs: Path, collector: Collector, prometheus: Prometheus
) -> None:
    server, base = serve(logs, collector, "survivor", workers=1)
    app = psutil.Process(server.process.pid)
    failures: list[str] = []
    sent = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal sent
        with httpx.Client(base_url=base, timeout=5) as client:
            while not stop.is_set():
                response = client.get("/ping")
                if response.status_code != 200:
                    failures.append(str(response.status_code))
                sent += 1
                time.sleep(0.002)

    try:
        job = 'job="survivor"'
        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(3)
        os.killpg(collector.server.process.pid, signal.SIGKILL)
        collector.server.process.wait()
        rss_at_kill = app.memory_info().rss
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
        restarted.stop()
    finally:
        stop.set()
        server.stop()


def restart(collector: Collector, log_dir: Path) -> Server:
    """The same binary on the same ports, as a supervisor would restart it."""
    server = Server("collector-restarted", collector.server.argv, log_dir, env=collector.server.env)
    server.wait_http(collector.health_url)
    return server
