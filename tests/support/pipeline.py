"""The real export pipeline on loopback: the otelkit collector and a Prometheus scraping it.

Both run with the repo's own config files, rewritten only for ports (and Prometheus's
intervals, so a test need not wait 15 s per scrape).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.collector import COLLECTOR_DIR, REPO, collector_binary
from tests.support.ports import free_port
from tests.support.processes import Server, http_ok
from tests.support.prometheus import prometheus_argv


@dataclass
class Collector:
    server: Server
    grpc_endpoint: str
    http_endpoint: str
    exporter_address: str
    telemetry_address: str
    health_url: str

    def stop(self) -> None:
        self.server.stop()


def start_collector(
    log_dir: Path,
    traces_to: str | None = None,
    name: str = "collector",
    memory_limit_mib: int | None = None,
    overlay: tuple[str, dict[str, str]] | None = None,
    metric_expiration: str | None = None,
) -> Collector:
    """``traces_to`` (host:port of an OTLP gRPC receiver) switches on config.traces-otlp.yaml;
    ``overlay`` (a collector/ file name and the variables it reads) loads that overlay;
    ``memory_limit_mib`` lowers the memory_limiter (a copy of the config) so a flood can reach it;
    ``metric_expiration`` shortens the prometheus exporter's (a copy) so a dead service's series go sooner."""
    grpc, http, exporter, telemetry, health = (free_port() for _ in range(5))
    env = {
        "OTELKIT_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
        "OTELKIT_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http}",
        "OTELKIT_PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{exporter}",
        "OTELKIT_COLLECTOR_TELEMETRY_HOST": "127.0.0.1",
        "OTELKIT_COLLECTOR_TELEMETRY_PORT": str(telemetry),
        "OTELKIT_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
    }
    config = COLLECTOR_DIR / "config.yaml"
    if memory_limit_mib is not None or metric_expiration is not None:
        document = yaml.safe_load(config.read_text())
        if memory_limit_mib is not None:
            document["processors"]["memory_limiter"].update(
                limit_mib=memory_limit_mib, spike_limit_mib=max(1, memory_limit_mib // 4)
            )
        if metric_expiration is not None:
            document["exporters"]["prometheus"]["metric_expiration"] = metric_expiration
        config = log_dir / f"{name}-config.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
    configs = [f"--config={config}"]
    if traces_to:
        env.update(OTELKIT_TRACES_OTLP_ENDPOINT=traces_to, OTELKIT_TRACES_OTLP_INSECURE="true")
        configs.append(f"--config={COLLECTOR_DIR / 'config.traces-otlp.yaml'}")
    if overlay:
        env.update(overlay[1])
        configs.append(f"--config={COLLECTOR_DIR / overlay[0]}")
    server = Server(name, [str(collector_binary()), *configs], log_dir, env=env)
    collector = Collector(
        server,
        grpc_endpoint=f"http://127.0.0.1:{grpc}",
        http_endpoint=f"http://127.0.0.1:{http}",
        exporter_address=f"127.0.0.1:{exporter}",
        telemetry_address=f"127.0.0.1:{telemetry}",
        health_url=f"http://127.0.0.1:{health}/",
    )
    server.wait_http(collector.health_url)
    return collector


def serve_worker_app(
    log_dir: Path,
    collector: Collector,
    service: str,
    *,
    workers: int = 1,
    name: str | None = None,
    embedded_endpoint: bool = False,
    settings: Mapping[str, str] | None = None,
) -> tuple[Server, str]:
    """tests/support/worker_app.py under uvicorn, exporting to ``collector`` every second as
    ``service``; returns the server and its base URL once it answers."""
    port = free_port()
    env = {
        "PYTHONPATH": str(REPO),
        "OTELKIT_SERVICE__NAME": service,
        "OTELKIT_OTLP__ENDPOINT": collector.grpc_endpoint,
        "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "1",
        "OTELKIT_OTLP__TIMEOUT_SECONDS": "2",
        "OTELKIT_PROMETHEUS__ENABLED": str(embedded_endpoint).lower(),
        **(settings or {}),
    }
    argv = [sys.executable, "-m", "uvicorn", "tests.support.worker_app:app", "--port", str(port)]
    argv += ["--workers", str(workers), "--log-level", "warning"]
    server = Server(name or f"app-{service}", argv, log_dir, env=env)
    base = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: http_ok(f"{base}/health"), what="serving")  # excluded from metrics
    return server, base


def _rules_at_scrape_interval(log_dir: Path) -> Path:
    """The committed rule files, copied without per-group `interval`s; returns the glob to load."""
    directory = log_dir / "rules"
    directory.mkdir(exist_ok=True)
    for path in sorted((REPO / "stack" / "prometheus" / "rules").glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group.pop("interval", None)
        (directory / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return directory / "*.yml"


class Prometheus:
    """Debian's Prometheus with the repo's prometheus.yml pointed at one collector.

    Besides the ports, the copy scrapes and evaluates every 1 s (a test waits seconds, not 15 s
    intervals), drops the `alerting` block (no Alertmanager here) and the jobs of servers the test
    does not run (the stack's exporters, unless ``moved_targets`` names them).

    ``load_rules`` loads the generated stack/prometheus/rules/*.yml, every group evaluated at the scrape
    interval (a group's own `interval` dropped), so recording rules hold values; alerts are sent nowhere.
    ``moved_targets`` keeps more of prometheus.yml's jobs, each target (as the file names it) moved to where
    the test runs that server, e.g. ``{"127.0.0.1:9100": "127.0.0.1:40123"}`` for the node exporter.
    """

    def __init__(
        self,
        log_dir: Path,
        collector: Collector,
        scrape_interval: str = "1s",
        load_rules: bool = False,
        moved_targets: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = yaml.safe_load((REPO / "stack" / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
        if load_rules:
            config["rule_files"] = [str(_rules_at_scrape_interval(log_dir))]
        else:
            config.pop("rule_files", None)
        config.pop("alerting", None)
        addresses = {
            "127.0.0.1:8889": collector.exporter_address,
            "127.0.0.1:8888": collector.telemetry_address,
            "127.0.0.1:9090": f"127.0.0.1:{self.port}",
            **(moved_targets or {}),
        }
        # Only the jobs this pipeline runs: the stack's exporters are not here (unless moved_targets has
        # them), and their `up == 0` would fire ServiceDown in every test that loads the rules.
        config["scrape_configs"] = [
            job
            for job in config["scrape_configs"]
            if all(target in addresses for static in job.get("static_configs", []) for target in static["targets"])
        ]
        for job in config["scrape_configs"]:
            for static in job.get("static_configs", []):
                static["targets"] = [addresses[target] for target in static["targets"]]
        config_path = log_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.server = Server(
            "prometheus", prometheus_argv(config_path, log_dir / "prometheus-data", self.port), log_dir
        )
        self.server.wait_until(lambda: http_ok(f"{self.url}/-/ready"), what="ready")

    def stop(self) -> None:
        self.server.stop()

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it returns no series."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{expr} returned {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, expected: Callable[[float | None], bool], timeout: float = 30.0) -> float | None:
        """Poll ``expr`` until ``expected(value)`` holds; fail with the last value seen."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(expr)
            if expected(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"{expr} = {value} after {timeout}s")


@contextmanager
def running_pipeline(
    log_dir: Path,
    traces_to: str | None = None,
    load_rules: bool = False,
    moved_targets: Mapping[str, str] | None = None,
) -> Iterator[tuple[Collector, Prometheus]]:
    """A collector and a Prometheus scraping it for the block; both stopped after, Prometheus first."""
    collector = start_collector(log_dir, traces_to=traces_to)
    try:
        prometheus = Prometheus(log_dir, collector, load_rules=load_rules, moved_targets=moved_targets)
        try:
            yield collector, prometheus
        finally:
            prometheus.stop()
    finally:
        collector.stop()
