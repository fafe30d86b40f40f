"""Prometheus mode end to end: service and in-process runner -> OTLP -> the otelkit collector -> a real
Prometheus evaluating the generated rules -> /sla/status and /sla/uptime; then Prometheus stops.

Exactness: ``rate()`` drops what a counter held at its first sample and scales the rest by one
extrapolation factor per scrape target. The schedule is played twice and exported only at chosen
moments (the periodic export is set to 10 minutes): Prometheus first sees every series after cycle
one, so the rules' ratios, means and quantiles are exactly those of cycle two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from otelkit.synthetic import SyntheticRunner
from stack.prometheus import generate
from stack.prometheus.rules_config import CONFIG
from tests.support.pipeline import Collector, start_collector
from tests.support.prometheus import Prometheus
from tests.synthetic.target import Target, serve, wait_until
from tests.synthetic.test_synthetic_monitoring import SCHEDULE, api_check, down_check

pytestmark = pytest.mark.slow
SERVICE = "checkout"


def write_rules_every_second(directory: Path) -> None:
    """The generated rules, every group evaluated at the global 1 s interval (the 30d group runs every 5m)."""
    directory.mkdir()
    for name, groups in generate.rule_files(CONFIG).items():
        for group in groups:
            group.pop("interval", None)
        (directory / name).write_text(generate.render(groups))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Collector, Prometheus]]:
    collector = start_collector(tmp_path)
    try:
        write_rules_every_second(tmp_path / "rules")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules" / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": "otel-services",
                    "honor_labels": True,
                    "static_configs": [{"targets": [collector.exporter_address]}],
                }
            ],
        }
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        prometheus = Prometheus(config_path, tmp_path)
        try:
            prometheus.wait_ready()
            yield collector, prometheus
        finally:
            prometheus.stop()
    finally:
        collector.stop()


def every_window(value: float) -> dict[str, float]:
    return dict.fromkeys(("1h", "1d", "7d", "30d"), value)


def poll(prometheus: Prometheus, expr: str, expected: Callable[[list[float]], bool], what: str) -> None:
    values: list[float] = []

    def check() -> bool:
        nonlocal values
        values = [float(item["value"][1]) for item in prometheus.query(expr)]
        return expected(values)

    try:
        wait_until(check, what, timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {expr} = {values}") from None


def test_sla_endpoints_read_the_recording_rules_fed_by_the_real_pipeline(
    stack: tuple[Collector, Prometheus],
) -> None:
    collector, prometheus = stack
    target = Target(
        {"api": SCHEDULE * 2},
        service={"name": SERVICE},
        otlp={"endpoint": collector.grpc_endpoint, "export_interval_seconds": 600, "traces": False},
        prometheus={"enabled": False},
        metrics={"system_metrics": False},
        sla={"prometheus_url": prometheus.url, "synthetic_job": SERVICE},
    )
    served: list[float] = []
    target.handle.http_metrics.observer = lambda status, seconds: served.append(seconds)
    job = f'job="{SERVICE}"'

    def export_and_see(expr: str, expected: Callable[[list[float]], bool], what: str) -> None:
        assert target.handle.force_flush(10)
        poll(prometheus, expr, expected, what)

    with serve(target.app) as base_url:
        runner = SyntheticRunner([api_check(base_url), down_check()], concurrency=2)

        def play(runs: int) -> None:
            for _ in range(runs):
                asyncio.run(runner.run_once())

        play(10)  # cycle one
        wait_until(lambda: len(served) == 10, "cycle one served")
        export_and_see(f"sum(http_request_duration_seconds_count{{{job}}})", lambda v: v == [10], "cycle one scraped")
        play(2)  # ok, error: Prometheus sees the api check down ...
        export_and_see(f'synthetic_check_success{{{job}, check="api"}}', lambda v: v == [0], "api down")
        play(1)  # ... and up again
        export_and_see(f'synthetic_check_success{{{job}, check="api"}}', lambda v: v == [1], "api up")
        play(7)
        wait_until(lambda: len(served) == 20, "cycle two served")
        cycle_two_mean = round(sum(served[10:20]) / 10, 9)  # /sla/* requests come later
        export_and_see(f"sum(http_request_duration_seconds_count{{{job}}})", lambda v: v == [20], "cycle two scraped")
        scraped = time.time()
        for record in (
            "job:http_requests:error_ratio_rate1h",  # otelkit-http.rules
            "job:http_requests:availability_ratio_rate1h",  # otelkit-sla.rules
            "job:http_requests:availability_ratio_rate30d",  # otelkit-sla-long.rules
        ):
            poll(prometheus, f"timestamp({record}{{{job}}})", lambda v: bool(v) and v[0] > scraped + 1, record)

        status = httpx.get(f"{base_url}/sla/status").json()
        uptime = httpx.get(f"{base_url}/sla/uptime").json()

        prometheus.stop()
        down = httpx.get(f"{base_url}/sla/status")
    target.handle.shutdown()  # while the collector still listens: nothing left to retry at teardown

    targets = status["targets"]
    assert (status["source"], status["service"], status["status"]) == ("prometheus", SERVICE, "violated")
    assert targets["availability"]["windows"] == {"1h": 0.9, "1d": 0.9, "7d": 0.9, "30d": 0.9}
    assert targets["error_rate"]["windows"] == {"1h": 0.1, "1d": 0.1, "7d": 0.1, "30d": 0.1}
    assert targets["p95_response_seconds"]["windows"] == {"1h": 0.625, "1d": 0.625, "7d": 0.625, "30d": 0.625}
    assert targets["average_response_seconds"]["windows"] == dict.fromkeys(("1h", "1d", "7d", "30d"), cycle_two_mean)
    assert (targets["availability"]["error_budget_remaining"], targets["error_rate"]["error_budget_remaining"]) == (
        -19.0,
        -9.0,
    )

    assert uptime["source"] == "prometheus"
    assert uptime["uptime"] == {"1h": 0.3, "1d": 0.3, "7d": 0.3, "30d": 0.3}
    api_uptime, down_uptime = uptime["checks"]["api"], uptime["checks"]["down"]
    assert (api_uptime["up"], api_uptime["uptime"], api_uptime["error_rate"]) == (
        True,
        every_window(0.6),
        every_window(0.4),
    )
    assert (down_uptime["up"], down_uptime["uptime"], down_uptime["error_rate"]) == (
        False,
        every_window(0.0),
        every_window(1.0),
    )
    assert uptime["error_rate"] == every_window(0.7)
    incidents = {incident["check"]: incident for incident in uptime["incidents"]}
    assert len(uptime["incidents"]) == 2
    assert incidents["api"]["ongoing"] is False and incidents["api"]["start"] < incidents["api"]["end"]
    assert (incidents["down"]["ongoing"], incidents["down"]["end"]) == (True, None)

    assert down.status_code == 503
    assert down.json()["error"].startswith(f"Prometheus at {prometheus.url} did not answer")
