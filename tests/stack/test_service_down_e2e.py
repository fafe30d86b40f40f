"""ServiceDown for services behind the collector, end to end: otelkit apps push OTLP to the real
collector, Prometheus scrapes it as the repo's `otel-services` job (honor_labels) with the generated
rules and sends to a real Alertmanager with the repo's config (addresses and secret files rewritten),
which pages a PagerDuty double and e-mails an SMTP sink.

The test copies shorten only time: the collector's metric_expiration (90s -> 3s), the rules' `for`
(CollectorDown 1m -> 3s, every other -> 6s: CollectorDown stays the quicker, as committed),
Prometheus's intervals (-> 1s) and the SDK's export interval (-> 1s).

- a rolling restart (a new instance id starts, then the old one stops) never makes ServiceDown
  pending for that service;
- SIGKILL of the only instance of "checkout": ServiceDown{evidence="series-gone"} fires for checkout,
  and is paged, and never for the service that lives on;
- the collector killed: one page, CollectorDown (one alert name, service otel-collector, for both
  jobs); the ServiceDown of the service that was alive behind it fires in Prometheus but is
  suppressed by CollectorDown in Alertmanager and never paged.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.prometheus import generate
from stack.prometheus.rules_config import CONFIG
from tests.support.alertmanager import SMTP_PASSWORD, SMTP_USER, Alertmanager, write_test_copy
from tests.support.pagerduty import PagerDutyDouble
from tests.support.pipeline import REPO, Collector, serve_worker_app, start_collector
from tests.support.processes import Server
from tests.support.prometheus import Prometheus
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_sink import WebhookSink

pytestmark = pytest.mark.slow

FIRES_WITHIN = 60.0  # expiration 3s + scrape 1s + `for` 6s, with room for a loaded machine
CRITICAL_GROUP_WAIT = 10.0  # the committed critical route's
SHORT_FOR = {"CollectorDown": "3s"}  # every other alert: 6s


def _write_rules(directory: Path) -> None:
    """The generated rules with `for` shortened, CollectorDown still the quicker (nothing else changed)."""
    directory.mkdir(parents=True)
    for name, groups in generate.rule_files(CONFIG).items():
        for group in groups:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = SHORT_FOR.get(rule["alert"], "6s")
        (directory / name).write_text(generate.render(groups))


def _kill(server: Server) -> None:
    """A crash: no shutdown, no last export."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.stop()


def _prometheus_config(directory: Path, collector: Collector, alertmanager: Alertmanager) -> Path:
    """The repo's prometheus.yml: its two collector jobs, pointed at this collector; 1s intervals."""
    config = yaml.safe_load((REPO / "stack" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(directory / "rules" / "*.yml")]
    target = alertmanager.url.removeprefix("http://")
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [target]}]}]
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
def sinks() -> Iterator[tuple[SmtpSink, PagerDutyDouble, WebhookSink]]:
    with SmtpSink(SMTP_USER, SMTP_PASSWORD) as smtp, PagerDutyDouble() as pagerduty, WebhookSink() as heartbeat:
        yield smtp, pagerduty, heartbeat


@pytest.fixture
def pagerduty(sinks: tuple[SmtpSink, PagerDutyDouble, WebhookSink]) -> PagerDutyDouble:
    return sinks[1]


@pytest.fixture
def alertmanager(tmp_path: Path, sinks: tuple[SmtpSink, PagerDutyDouble, WebhookSink]) -> Iterator[Alertmanager]:
    smtp, pagerduty, heartbeat = sinks
    config = write_test_copy(
        tmp_path / "am", smtp_smarthost=smtp.smarthost, pagerduty_url=pagerduty.url, heartbeat_url=heartbeat.url
    )
    alertmanager = Alertmanager("alertmanager", config, tmp_path)
    alertmanager.wait_ready()
    yield alertmanager
    alertmanager.stop()


@pytest.fixture
def prometheus(tmp_path: Path, collector: Collector, alertmanager: Alertmanager) -> Iterator[Prometheus]:
    _write_rules(tmp_path / "rules")
    prometheus = Prometheus(_prometheus_config(tmp_path, collector, alertmanager), tmp_path)
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


def _paged(pagerduty: PagerDutyDouble) -> list[str]:
    """The alert name and service of every PagerDuty trigger, in order ("ServiceDown checkout")."""
    return [" ".join(e.summary.split()[1:3]) for e in pagerduty.accepted() if e.action == "trigger"]


def test_a_killed_service_behind_the_collector_pages_as_service_down(
    tmp_path: Path, collector: Collector, prometheus: Prometheus, alertmanager: Alertmanager, pagerduty: PagerDutyDouble
) -> None:
    watch = Watch(prometheus)
    apps: list[Server] = []
    try:
        checkout = serve_worker_app(tmp_path, collector, "checkout", name="checkout")[0]
        search_old = serve_worker_app(tmp_path, collector, "search", name="search-1")[0]
        apps += [checkout, search_old]
        watch.until(lambda _: _has_target_info(prometheus, "checkout", 1), 30, "checkout's target_info")
        watch.until(lambda _: _has_target_info(prometheus, "search", 1), 30, "search's target_info")

        # Rolling restart of search: the new instance (a new service.instance.id) first, then the old one
        # crashes; wait until only the new one is left in Prometheus.
        search_new = serve_worker_app(tmp_path, collector, "search", name="search-2")[0]
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
        assert pagerduty.wait_for(lambda e: "ServiceDown checkout (critical)" in e.summary, FIRES_WITHIN)
        assert _paged(pagerduty) == ["ServiceDown checkout"]

        collector.stop()  # the collector dies: both of its jobs fail their scrapes, search's series vanish
        watch.until(_firing("CollectorDown", "otel-collector"), FIRES_WITHIN, "CollectorDown")
        jobs = {a["labels"]["job"] for a in watch.poll() if a["labels"]["alertname"] == "CollectorDown"}
        assert jobs == {"otel-services", "otel-collector"}
        watch.until(_firing("ServiceDown", "search"), FIRES_WITHIN, "ServiceDown for search behind the dead collector")
        muted = _wait_suppressed(alertmanager, "search", by="CollectorDown")
        # search's group flushes CRITICAL_GROUP_WAIT after its alert arrived: still one page, CollectorDown.
        time.sleep(CRITICAL_GROUP_WAIT + 5)
        assert _paged(pagerduty) == ["ServiceDown checkout", "CollectorDown otel-collector"], muted
        assert pagerduty.rejected() == []
    finally:
        for app in apps:
            app.stop()


def _wait_suppressed(alertmanager: Alertmanager, service: str, by: str, timeout: float = 30.0) -> dict[str, Any]:
    """``service``'s ServiceDown in Alertmanager, suppressed by an alert named ``by``."""
    deadline = time.monotonic() + timeout
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        alerts = alertmanager.alerts()
        names = {a["fingerprint"]: a["labels"]["alertname"] for a in alerts}
        for a in alerts:
            if a["labels"]["alertname"] == "ServiceDown" and a["labels"]["service"] == service:
                sources = {names.get(fp) for fp in a["status"]["inhibitedBy"]}
                if a["status"]["state"] == "suppressed" and sources == {by}:
                    return a
        time.sleep(0.5)
    raise AssertionError(f"ServiceDown {service} not suppressed by {by} within {timeout}s: {alerts}")
