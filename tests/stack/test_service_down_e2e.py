"""ServiceDown for services behind the collector, end to end: otelkit apps push OTLP to the real
collector, Prometheus scrapes it as the repo's `otel-services` job (honor_labels) with the generated
rules, and a killed app pages as ServiceDown{service=<its name>} though its scrape job stays up.

The test copies shorten only time: the collector's metric_expiration (90s -> 3s), every rule's `for`
(-> 5s), Prometheus's intervals (-> 1s) and the SDK's export interval (-> 1s).

- a rolling restart (a new instance id starts, then the old one stops) never makes ServiceDown
  pending for that service;
- SIGKILL of the only instance of "checkout": ServiceDown{evidence="series-gone"} fires for checkout,
  and never for the service that lives on;
- the collector killed: CollectorDown fires (one alert name, service otel-collector, for both jobs).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.pipeline import REPO, Collector, start_collector
from tests.support.ports import free_port
from tests.support.processes import Server, http_ok
from tests.support.prometheus import Prometheus, write_rules

pytestmark = pytest.mark.slow

FIRES_WITHIN = 60.0  # expiration 3s + scrape 1s + `for` 5s, with room for a loaded machine


def _serve(log_dir: Path, collector: Collector, service: str, name: str) -> Server:
    port = free_port()
    env = {
        "PYTHONPATH": str(REPO),
        "OTELKIT_SERVICE__NAME": service,
        "OTELKIT_OTLP__ENDPOINT": collector.grpc_endpoint,
        "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "1",
        "OTELKIT_OTLP__TIMEOUT_SECONDS": "2",
        "OTELKIT_PROMETHEUS__ENABLED": "false",
    }
    argv = [sys.executable, "-m", "uvicorn", "tests.support.worker_app:app", "--port", str(port)]
    server = Server(name, [*argv, "--log-level", "warning"], log_dir, env=env)
    server.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), what="serving")
    return server


def _kill(server: Server) -> None:
    """A crash: no shutdown, no last export."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.stop()


def _prometheus_config(directory: Path, collector: Collector) -> Path:
    """The repo's prometheus.yml: its two collector jobs, pointed at this collector; 1s intervals."""
    config = yaml.safe_load((REPO / "stack" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(directory / "rules" / "*.yml")]
    config.pop("alerting")
    addresses = {"otel-services": collector.exporter_address, "otel-collector": collector.telemetry_address}
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in addresses]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [addresses[job["job_name"]]]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    collector = start_collector(tmp_path, metric_expiration="3s")
    yield collector
    collector.stop()


@pytest.fixture
def prometheus(tmp_path: Path, collector: Collector) -> Iterator[Prometheus]:
    write_rules(tmp_path / "rules")
    prometheus = Prometheus(_prometheus_config(tmp_path, collector), tmp_path)
    prometheus.wait_ready()
    yield prometheus
    prometheus.stop()


class Watch:
    """Every ServiceDown/CollectorDown state Prometheus reported, polled until a condition holds."""

    def __init__(self, prometheus: Prometheus) -> None:
        self.prometheus = prometheus
        self.seen: list[tuple[str, str, str, str]] = []  # (alertname, service, evidence, state)

    def poll(self) -> list[dict[str, Any]]:
        alerts = [a for a in self.prometheus.alerts() if a["labels"]["alertname"] in {"ServiceDown", "CollectorDown"}]
        for a in alerts:
            entry = (a["labels"]["alertname"], a["labels"]["service"], a["labels"].get("evidence", ""), a["state"])
            if entry not in self.seen:
                self.seen.append(entry)
        return alerts

    def until(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.poll()):
                return
            time.sleep(0.5)
        raise AssertionError(f"{what} not within {timeout}s; seen {self.seen}")


def _firing(alertname: str, service: str) -> Any:
    return lambda alerts: any(
        a["labels"]["alertname"] == alertname and a["labels"]["service"] == service and a["state"] == "firing"
        for a in alerts
    )


def _has_target_info(prometheus: Prometheus, job: str, instances: int) -> bool:
    return len(prometheus.query(f'target_info{{job="{job}", telemetry_sdk_name="opentelemetry"}}')) == instances


def test_a_killed_service_behind_the_collector_pages_as_service_down(
    tmp_path: Path, collector: Collector, prometheus: Prometheus
) -> None:
    watch = Watch(prometheus)
    apps: list[Server] = []
    try:
        checkout = _serve(tmp_path, collector, "checkout", "checkout")
        search_old = _serve(tmp_path, collector, "search", "search-1")
        apps += [checkout, search_old]
        watch.until(lambda _: _has_target_info(prometheus, "checkout", 1), 30, "checkout's target_info")
        watch.until(lambda _: _has_target_info(prometheus, "search", 1), 30, "search's target_info")

        # Rolling restart of search: the new instance (a new service.instance.id) first, then the old one
        # crashes; wait until only the new one is left in Prometheus.
        search_new = _serve(tmp_path, collector, "search", "search-2")
        apps.append(search_new)
        watch.until(lambda _: _has_target_info(prometheus, "search", 2), 30, "both search instances")
        _kill(search_old)
        watch.until(lambda _: _has_target_info(prometheus, "search", 1), 30, "the old search instance expiring")

        _kill(checkout)
        watch.until(_firing("ServiceDown", "checkout"), FIRES_WITHIN, "ServiceDown for the killed checkout")
        [alert] = [a for a in watch.poll() if a["labels"]["service"] == "checkout"]
        assert alert["labels"]["evidence"] == "series-gone"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["job"] == "checkout"
        assert not [entry for entry in watch.seen if entry[1] == "search"], watch.seen  # not even pending

        collector.stop()  # the collector crashes: both of its jobs fail their scrapes
        watch.until(_firing("CollectorDown", "otel-collector"), FIRES_WITHIN, "CollectorDown")
        jobs = {a["labels"]["job"] for a in watch.poll() if a["labels"]["alertname"] == "CollectorDown"}
        assert jobs == {"otel-services", "otel-collector"}
    finally:
        for app in apps:
            app.stop()
