"""Prometheus mode end to end: service and in-process runner -> OTLP -> the otelkit collector -> a real
Prometheus evaluating the generated rules -> /sla/status and /sla/uptime; then Prometheus stops.

Exactness: ``rate()`` drops what a counter held at its first sample and scales the rest by one
extrapolation factor per scrape target. The schedule is played twice and exported only at chosen
moments (the periodic export is set to 10 minutes): Prometheus first sees every series after cycle
one, so the rules' ratios, means and quantiles are exactly those of cycle two.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from otelkit.cli.synthetic import DEFAULT_SERVICE_NAME
from otelkit.settings import DEFAULT_BUCKETS, SlaSettings
from otelkit.sla import SlaMonitor
from otelkit.synthetic import SyntheticRunner
from stack.prometheus import generate
from stack.prometheus.rules_config import CONFIG
from tests.support.pipeline import Collector, start_collector
from tests.support.ports import refused_port
from tests.support.processes import Server
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


def seconds_of(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time).timestamp()


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

        def play(runs: int) -> dict[str, float]:
            """The start of each check's last run."""
            results = [asyncio.run(runner.run_once()) for _ in range(runs)]
            return {outcome.check: outcome.started_at for outcome in results[-1]}

        down_started = play(10)["down"]  # cycle one; "down" fails from its first run
        wait_until(lambda: len(served) == 10, "cycle one served")
        export_and_see(f"sum(http_request_duration_seconds_count{{{job}}})", lambda v: v == [10], "cycle one scraped")
        down_seen = time.time()
        api_failed = play(2)["api"]  # ok, error: Prometheus sees the api check down ...
        export_and_see(f'synthetic_check_success{{{job}, check="api"}}', lambda v: v == [0], "api down")
        api_down_seen = time.time()
        api_recovered = play(1)["api"]  # ... and up again
        export_and_see(f'synthetic_check_success{{{job}, check="api"}}', lambda v: v == [1], "api up")
        api_up_seen = time.time()
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
    # rank 9.5 of each 10: the slow answer (1.2 s) at or below 2.5 s, the hung one (2.6 s) above: half-way into (2.5, 5]
    assert targets["p95_response_seconds"]["windows"] == {"1h": 3.75, "1d": 3.75, "7d": 3.75, "30d": 3.75}
    assert targets["average_response_seconds"]["windows"] == dict.fromkeys(("1h", "1d", "7d", "30d"), cycle_two_mean)
    assert (targets["availability"]["error_budget_remaining"], targets["error_rate"]["error_budget_remaining"]) == (
        -19.0,
        -9.0,
    )
    assert targets["p95_response_seconds"]["error_budget_remaining"] == -3.0  # 20% over 500 ms, 5% allowed

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
    # Incidents have the scrape's resolution: each edge lies between the run that changed the check's
    # state and the moment the test saw Prometheus hold it (milliseconds of the ISO form aside).
    incidents = {incident["check"]: incident for incident in uptime["incidents"]}
    assert len(uptime["incidents"]) == 2
    api_incident, down_incident = incidents["api"], incidents["down"]
    start, end = seconds_of(api_incident["start"]), seconds_of(api_incident["end"])
    assert api_failed - 0.001 <= start <= api_down_seen
    assert api_recovered - 0.001 <= end <= api_up_seen
    assert (api_incident["ongoing"], api_incident["duration_seconds"]) == (False, round(end - start, 3))
    assert (down_incident["ongoing"], down_incident["end"]) == (True, None)
    assert down_started - 0.001 <= seconds_of(down_incident["start"]) <= down_seen

    assert down.status_code == 503
    assert down.json()["error"].startswith(f"Prometheus at {prometheus.url} did not answer")


def runner_process(name: str, checks: Path, base_url: str, collector: Collector, directory: Path) -> Server:
    """``otelkit synthetic run`` as the stack runs it: a process of its own, default service name, OTLP out."""
    env = {
        "OTELKIT_OTLP__ENDPOINT": collector.grpc_endpoint,
        "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "0.5",
        "OTELKIT_OTLP__TRACES": "false",
        "OTELKIT_METRICS__SYSTEM_METRICS": "false",
        "OTELKIT_SENTRY__ENABLED": "false",
    }
    main = "import sys; from otelkit.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", main, "synthetic", "run", f"--config={checks}", f"--base-url={base_url}"]
    return Server(name, [*argv, "--quiet"], directory, env)


def test_two_cli_runners_with_the_default_job_feed_sla_uptime_as_one(
    stack: tuple[Collector, Prometheus], tmp_path: Path
) -> None:
    """The documented default: the runner elsewhere (here: two of them), job="otelkit-synthetic", and the
    service's /sla/uptime reading them through Prometheus; then Prometheus answering errors."""
    collector, prometheus = stack
    target = Target(
        service={"name": SERVICE},
        otlp={"endpoint": collector.grpc_endpoint, "export_interval_seconds": 600, "traces": False},
        prometheus={"enabled": False},
        metrics={"system_metrics": False},
        sla={"prometheus_url": prometheus.url},
    )
    assert target.handle.settings.sla.synthetic_job == DEFAULT_SERVICE_NAME
    checks = tmp_path / "checks.yaml"
    every = {"interval_seconds": 0.3, "jitter": 0, "timeout_seconds": 2}
    down_url = f"http://127.0.0.1:{refused_port()}/health"
    checks.write_text(
        yaml.safe_dump(
            {"checks": [{"name": "api", "url": "/gate", **every}, {"name": "down", "url": down_url, **every}]}
        )
    )
    job = f'job="{DEFAULT_SERVICE_NAME}"'
    with serve(target.app) as base_url:
        runners = [runner_process(f"runner-{n}", checks, base_url, collector, tmp_path) for n in (1, 2)]
        try:
            poll(
                prometheus,
                f'count(synthetic_checks_total{{{job}, check="api", result="success"}})',
                lambda v: v == [2],
                "two runner instances",
            )
            poll(
                prometheus,
                f"job_check:synthetic_checks:success_ratio_rate1h{{{job}}}",
                lambda v: sorted(v) == [0.0, 1.0],
                "both checks recorded",
            )
            uptime: dict[str, Any] = {}

            def every_window_recorded() -> bool:  # the rule groups are evaluated one after another
                nonlocal uptime
                uptime = httpx.get(f"{base_url}/sla/uptime").json()
                measures = [measure for check in uptime["checks"].values() for measure in check.values()]
                return all(None not in measure.values() for measure in measures if isinstance(measure, dict))

            wait_until(every_window_recorded, "every window of both checks recorded", timeout=30)
        finally:
            for runner in runners:
                runner.stop()
    assert (uptime["source"], uptime["service"]) == ("prometheus", SERVICE)
    api, down = uptime["checks"]["api"], uptime["checks"]["down"]
    assert (api["up"], api["uptime"], api["error_rate"]) == (True, every_window(1.0), every_window(0.0))
    assert (down["up"], down["uptime"], down["error_rate"]) == (False, every_window(0.0), every_window(1.0))
    for check in (api, down):
        for measure in ("average_response_seconds", "p95_response_seconds"):
            assert all(value is not None and value > 0 for value in check[measure].values()), (measure, check)
    assert 0 < uptime["uptime"]["1h"] < 1
    # Both runners saw "down" fail from their first run: one incident, still going (not one per runner)
    assert [(incident["check"], incident["ongoing"]) for incident in uptime["incidents"]] == [("down", True)]


def test_prometheus_answering_an_error_is_a_503_with_its_reason(
    stack: tuple[Collector, Prometheus], tmp_path: Path
) -> None:
    """A wrong URL (Prometheus's 404) and a query Prometheus refuses (its sample limit, 422)."""
    collector, prometheus = stack
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "otelkit-synthetic", "static_configs": [{"targets": [collector.exporter_address]}]}
        ],
    }
    (tmp_path / "limited.yml").write_text(yaml.safe_dump(config))
    limited = Prometheus(tmp_path / "limited.yml", tmp_path, name="limited", extra_args=["--query.max-samples=1"])
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        yaml.safe_dump(
            {"checks": [{"name": "down", "url": f"http://127.0.0.1:{refused_port()}/", "interval_seconds": 0.3}]}
        )
    )
    runner = runner_process("runner", checks, "http://127.0.0.1:1", collector, tmp_path)
    try:
        limited.wait_ready()
        lookback = 'synthetic_check_success{job="otelkit-synthetic"}[1d]'
        wait_until(
            lambda: httpx.get(f"{limited.url}/api/v1/query", params={"query": lookback}).status_code == 422,
            "two samples of synthetic_check_success, over the limit",
            timeout=30,
        )

        def respond(url: str, endpoint: str) -> tuple[int, str]:
            settings = SlaSettings(prometheus_url=url, prometheus_timeout_seconds=5)
            monitor = SlaMonitor(settings, service=SERVICE, bounds=DEFAULT_BUCKETS)
            response = asyncio.run(getattr(monitor, endpoint)(None))
            return response.status_code, json.loads(response.body)["error"]

        assert respond(limited.url, "uptime_endpoint") == (
            503,
            f"Prometheus at {limited.url} answered 422: "
            "query processing would load too many samples into memory in query execution",
        )
        wrong = f"{prometheus.url}/not-prometheus"
        assert respond(wrong, "status_endpoint") == (503, f"Prometheus at {wrong} answered 404: 404 page not found")
    finally:
        runner.stop()
        limited.stop()
