"""An OTLP flood beyond the collector's memory_limiter: refused with back-pressure, nothing crashes,
and a service exporting beside the flood keeps serving with bounded memory, retries, and its counts
arrive exactly once the collector takes data again.

The memory limit is lowered in a copy of the config (64 MiB instead of 512) so that two Python
clients can exceed it on this machine, and the Prometheus exporter's ``metric_expiration`` is
shortened there (30 s instead of the shipped 90 s, as the alert tests shorten ``for:``); the
processor and the pipeline are the shipped ones. The flood's series hold the collector above its
limit until they expire, so how long the catch-up takes is set by ``metric_expiration``: the wait
is bounded by it.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import httpx
import psutil
import pytest

from tests.support.collector import REPO
from tests.support.otlp_load import counter_request, metrics_client
from tests.support.pipeline import Collector, start_collector
from tests.support.ports import free_port
from tests.support.processes import Server, http_ok

pytestmark = pytest.mark.slow
LIMIT_MIB = 64
# The gRPC exporter's warning before each retry of a refused export.
RETRIED = re.compile(
    r"Transient error StatusCode\.(UNAVAILABLE|RESOURCE_EXHAUSTED) encountered while exporting metrics"
)


EXPIRATION_SECONDS = 30


def exported_samples(collector: Collector, job: str) -> dict[str, float]:
    """The collector's Prometheus exporter page, only the samples of ``job`` (the page holds the flood too)."""
    request = urllib.request.Request(f"http://{collector.exporter_address}/metrics", headers={"Accept": "text/plain"})
    samples = {}
    with urllib.request.urlopen(request, timeout=60) as response:
        for raw in response:
            line = raw.decode()
            if f'job="{job}"' in line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                samples[series] = float(value)
    return samples


def test_a_flood_is_refused_the_sdk_retries_and_catches_up_exactly_after(tmp_path: Path) -> None:
    collector = start_collector(tmp_path, memory_limit_mib=LIMIT_MIB, metric_expiration=f"{EXPIRATION_SECONDS}s")
    app_port = free_port()
    app = Server(
        "app",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.support.worker_app:app",
            "--port",
            str(app_port),
            "--log-level",
            "warning",
        ],
        tmp_path,
        env={
            "PYTHONPATH": str(REPO),
            "OTELKIT_SERVICE__NAME": "steady",
            "OTELKIT_OTLP__ENDPOINT": collector.grpc_endpoint,
            "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "1",
            "OTELKIT_OTLP__TIMEOUT_SECONDS": "2",
            "OTELKIT_PROMETHEUS__ENABLED": "false",
        },
    )
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def flood(client: int) -> None:
        with metrics_client(collector.grpc_endpoint) as send:
            batch = 0
            while not stop.is_set():
                # Every datapoint a new series: the collector's Prometheus exporter must keep them all.
                series = [f"{client}-{batch}-{i}" for i in range(5000)]
                try:
                    send(counter_request(f"flood-{client}", "flood_total", series, 1.0, padding=64))
                    outcome = "accepted"
                except grpc.RpcError as error:
                    outcome = error.code().name
                with lock:
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                batch += 1

    try:
        base = f"http://127.0.0.1:{app_port}"
        app.wait_until(lambda: http_ok(f"{base}/health"), what="serving")
        collector_process = psutil.Process(collector.server.process.pid)
        app_process = psutil.Process(app.process.pid)
        app_rss_before = app_process.memory_info().rss
        threads = [threading.Thread(target=flood, args=(client,)) for client in range(2)]
        for thread in threads:
            thread.start()
        sent = 0
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                assert client.get("/ping").status_code == 200
                sent += 1
                time.sleep(0.01)
        stop.set()
        for thread in threads:
            thread.join()
        # The memory_limiter refused data (a retryable status: back-pressure) and the collector stayed up.
        # Its memory is not asserted: series the Prometheus exporter already holds stay until
        # metric_expiration, which no limiter can free; the refusals are what keep it from growing further.
        assert outcomes.get("accepted", 0) > 0
        assert sum(count for code, count in outcomes.items() if code != "accepted") > 0, outcomes
        assert set(outcomes) <= {"accepted", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}, outcomes
        assert "Memory usage is above soft limit. Refusing data." in collector.server.log()
        assert collector.server.process.poll() is None and http_ok(collector.health_url)
        print(f"collector RSS after the flood: {collector_process.memory_info().rss / 2**20:.0f} MiB; {outcomes}")
        # The app kept serving while its exports were refused, retried them, and did not pile them up.
        assert sent > 0  # each answered 200 (asserted as sent); how many depends on the flood's CPU use
        assert app_process.memory_info().rss - app_rss_before < 40 * 2**20
        assert RETRIED.search(app.log()), app.log()[-3000:]

        # Once the flood's series expire the collector takes data again, and the app's next cumulative
        # export carries every request it served: nothing lost, nothing counted twice.
        flood_ended = time.monotonic()
        deadline = flood_ended + EXPIRATION_SECONDS + 120
        samples: dict[str, float] = {}

        def pings() -> float:
            return sum(v for k, v in samples.items() if k.startswith("http_requests_total{") and 'handler="/ping"' in k)

        while time.monotonic() < deadline and pings() != sent:
            time.sleep(5)
            if time.monotonic() - flood_ended > EXPIRATION_SECONDS * 0.8:  # before that, it is all flood
                samples = exported_samples(collector, "steady")
        assert pings() == sent, (sent, {k: v for k, v in samples.items() if k.startswith("http_requests")})
        failed_span_exports = sum(
            value
            for series, value in samples.items()
            if series.startswith("otel_sdk_exporter_span_exported_total") and "error_type=" in series
        )
        assert failed_span_exports > 0, "the refused span exports are counted"
        assert collector.server.process.poll() is None
    finally:
        stop.set()
        app.stop()
        collector.stop()
