"""stack/alertmanager/alertmanager.yml: validity, routing table, templates, inhibition, business hours.

Routing by labels is checked with `amtool config routes test` (Alertmanager's own routing code).
amtool ignores time intervals, so business hours are checked with real Alertmanagers: each one
reads a generated time-zone file under the config's own zone name that makes "now" read as the
scenario's local time (see tests/support/zoneinfo.py), and the SMTP sink shows whether the info
alert was e-mailed. Inhibition is checked with a real Alertmanager's API (status.inhibitedBy).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alertmanager import (
    CONFIG_PATH,
    SMTP_PASSWORD,
    SMTP_USER,
    TEMPLATES,
    Alertmanager,
    alert,
    repo_config,
    write_test_copy,
)
from tests.support.pagerduty import PagerDutyDouble
from tests.support.processes import require_binary
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_sink import WebhookSink
from tests.support.zoneinfo import offset_for, write_zone

RUNBOOK = "https://runbooks.prodstack.local/api-errors"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("amtool", "prometheus-alertmanager")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)


def test_repo_config_is_valid() -> None:
    result = amtool("check-config", str(CONFIG_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def _keys(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_secrets_come_from_files_only() -> None:
    keys = dict(_keys(repo_config()))
    inline = {"routing_key", "service_key", "auth_password", "smtp_auth_password", "auth_secret", "api_key"}
    assert not inline & keys.keys()
    assert keys["routing_key_file"].startswith("/etc/alertmanager/secrets/")
    assert keys["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")


def test_business_hours_have_an_explicit_zone() -> None:
    [interval] = [i for i in repo_config()["time_intervals"] if i["name"] == "business-hours"]
    assert all(part.get("location") for part in interval["time_intervals"])


# --- routing by labels (amtool) ---------------------------------------------------------------

ROUTES: list[tuple[dict[str, str], list[str]]] = [
    ({"alertname": "HttpErrorRateHigh", "severity": "critical", "service": "checkout"}, ["pagerduty-and-email"]),
    ({"alertname": "HttpErrorBudgetBurn", "severity": "critical", "long": "1h"}, ["pagerduty-and-email"]),
    ({"alertname": "HostMemoryUsageHigh", "severity": "critical", "service": "checkout"}, ["pagerduty-and-email"]),
    ({"alertname": "ServiceDown", "severity": "critical", "service": "checkout"}, ["pagerduty-and-email"]),
    ({"alertname": "CollectorDown", "severity": "critical", "service": "otel-collector"}, ["pagerduty-and-email"]),
    ({"alertname": "InstanceDown", "severity": "warning", "service": "checkout", "instance": "i-1"}, ["email"]),
    ({"alertname": "HostMemoryMetricsAbsent", "severity": "warning", "service": "checkout"}, ["email"]),
    ({"alertname": "HttpLatencyP95High", "severity": "warning", "service": "checkout"}, ["email"]),
    ({"alertname": "HttpErrorBudgetBurn", "severity": "warning", "long": "3d"}, ["email"]),
    ({"alertname": "PaymentMetricsAbsent", "severity": "info", "service": "checkout"}, ["email"]),
    ({"alertname": "Watchdog", "severity": "info", "service": "alerting-pipeline"}, ["heartbeat"]),
    ({"alertname": "Watchdog", "severity": "critical"}, ["heartbeat"]),  # never pages, whatever its severity
    ({"alertname": "SomethingNew", "severity": "page"}, ["email"]),  # unknown severity: still reaches a human
    ({"alertname": "SomethingNew"}, ["email"]),
]


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=lambda v: ",".join(v) if isinstance(v, list) else None)
def test_route(labels: dict[str, str], receivers: list[str]) -> None:
    pairs = [f"{name}={value}" for name, value in labels.items()]
    result = amtool(
        "config", "routes", "test", f"--config.file={CONFIG_PATH}", f"--verify.receivers={','.join(receivers)}", *pairs
    )
    assert result.returncode == 0, f"{labels} -> {result.stdout.strip()} (expected {receivers})\n{result.stderr}"
    assert result.stdout.split() == [",".join(receivers)]


# --- templates (amtool template render, with the data of a real notification) ----------------


def _render(template: str, data: dict[str, Any], tmp_path: Path, kind: str = "text") -> str:
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data))
    result = amtool(
        "template",
        "render",
        f"--template.glob={TEMPLATES}/*.tmpl",
        f"--template.text={{{{ template {json.dumps(template)} . }}}}",
        f"--template.type={kind}",
        f"--template.data={data_file}",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _notification(status: str = "firing") -> dict[str, Any]:
    labels = {"alertname": "HttpErrorRateHigh", "service": "checkout", "severity": "critical", "family": "api-errors"}
    annotations = {
        "summary": "More than 5% of HTTP requests fail with a server error.",
        "description": "6% of checkout's requests returned 5xx over the last 5m (threshold 5%).",
        "runbook_url": RUNBOOK,
    }
    one = {
        "status": status,
        "labels": {**labels, "job": "checkout"},
        "annotations": annotations,
        "startsAt": "2026-01-02T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": "0123456789abcdef",
    }
    return {
        "receiver": "pagerduty-and-email",
        "status": status,
        "alerts": [one],
        "groupLabels": {"alertname": "HttpErrorRateHigh", "service": "checkout"},
        "commonLabels": one["labels"],
        "commonAnnotations": annotations,
        "externalURL": "http://127.0.0.1:9093",
    }


def test_templates_name_the_alert_and_link_the_runbook(tmp_path: Path) -> None:
    data = _notification()
    assert _render("otelkit.email.subject", data, tmp_path) == "[FIRING:1] HttpErrorRateHigh checkout (critical)"
    summary = _render("otelkit.pagerduty.summary", data, tmp_path)
    assert summary.startswith("[FIRING:1] HttpErrorRateHigh checkout (critical): More than 5% of HTTP")
    assert summary.endswith(f"Runbook: {RUNBOOK}")
    assert _render("otelkit.pagerduty.severity", data, tmp_path) == "critical"
    text = _render("otelkit.email.text", data, tmp_path)
    assert f"Runbook: {RUNBOOK}" in text
    assert "6% of checkout's requests returned 5xx" in text
    html = _render("otelkit.email.html", data, tmp_path, kind="html")
    assert f'<a href="{RUNBOOK}">' in html
    assert _render("otelkit.email.subject", _notification("resolved"), tmp_path).startswith("[RESOLVED] ")


# --- real Alertmanagers ---------------------------------------------------------------------------


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpSink, PagerDutyDouble, WebhookSink]]:
    with SmtpSink(SMTP_USER, SMTP_PASSWORD) as smtp, PagerDutyDouble() as pagerduty, WebhookSink() as heartbeat:
        yield smtp, pagerduty, heartbeat


def _labels(alertname: str, severity: str, family: str, service: str, **extra: str) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, "family": family, "service": service, **extra}


GONE = {"evidence": "series-gone"}
SCRAPE = {"evidence": "scrape-failed"}

# (alert, the alertnames of the alerts inhibiting it). Labels as the generated rules give them.
INHIBITION: list[tuple[dict[str, str], set[str]]] = [
    # a critical alert mutes its family's warnings and infos, for the same service only
    (_labels("HttpErrorRateHigh", "critical", "api-errors", "checkout"), set()),
    (_labels("HttpErrorBudgetBurn", "warning", "api-errors", "checkout", long="1d", short="2h"), {"HttpErrorRateHigh"}),
    (_labels("ApiErrorsInfo", "info", "api-errors", "checkout"), {"HttpErrorRateHigh"}),
    (_labels("HttpErrorBudgetBurn", "warning", "api-errors", "search", long="1d", short="2h"), set()),
    # the error-rate page mutes the same service's latency warnings (and their missing input)
    (_labels("HttpLatencyP95High", "warning", "api-latency", "checkout"), {"HttpErrorRateHigh"}),
    (_labels("HttpDurationMetricsAbsent", "warning", "api-latency", "checkout", **GONE), {"HttpErrorRateHigh"}),
    (_labels("HttpLatencyP95High", "warning", "api-latency", "users"), set()),
    # ... but the day-long SLA alert does not
    (_labels("ServiceSLAViolated", "critical", "api-errors", "ledger"), set()),
    (_labels("HttpLatencyP95High", "warning", "api-latency", "ledger"), set()),
    (_labels("PaymentFailureRateHigh", "critical", "payments", "shop"), set()),
    (_labels("PaymentMetricsAbsent", "info", "payments", "shop", **GONE), {"PaymentFailureRateHigh"}),
    # a warning mutes nothing
    (_labels("GenerationSuccessRateLow", "warning", "generation", "gen"), set()),
    (_labels("GenerationMetricsAbsent", "info", "generation", "gen", **GONE), set()),
    # memory near exhaustion mutes the same host's CPU warning, not its disk, not another host
    (_labels("HostMemoryUsageHigh", "critical", "host-memory", "orders", instance="i-1"), set()),
    (_labels("HostCpuUsageHigh", "warning", "host-cpu", "orders", instance="i-1"), {"HostMemoryUsageHigh"}),
    (_labels("HostCpuUsageHigh", "warning", "host-cpu", "orders", instance="i-2"), set()),
    (_labels("HostDiskUsageHigh", "warning", "host-disk", "orders", instance="i-1", mountpoint="/"), set()),
    # ServiceDown (every instance) mutes the service's API alerts, critical ones included, and its
    # missing-metric alerts; nothing of other services
    (_labels("ServiceDown", "critical", "api-availability", "billing", job="billing", **GONE), set()),
    (_labels("HttpErrorRateHigh", "critical", "api-errors", "billing"), {"ServiceDown"}),
    (_labels("HttpRequestsAbsent", "warning", "api-availability", "billing", **GONE), {"ServiceDown"}),
    (_labels("QueueDepthAbsent", "warning", "queue", "billing", **GONE), {"ServiceDown"}),
    (_labels("QueueDepthHigh", "warning", "queue", "billing"), set()),
    (_labels("HostMemoryUsageHigh", "critical", "host-memory", "billing", instance="b-1"), set()),
    # one instance down is a warning that mutes nothing: the healthy replicas keep their alerts
    (_labels("InstanceDown", "warning", "instance", "users", instance="u-1", **SCRAPE), set()),
    (_labels("HttpErrorBudgetBurn", "critical", "api-errors", "users", long="1h", short="5m"), set()),
]

# A dead collector is one page: every series-gone alert (of every service behind it) is muted.
# Its own Alertmanager, as it would mute the series-gone alerts of the table above too.
COLLECTOR_DOWN: list[tuple[dict[str, str], set[str]]] = [
    (_labels("CollectorDown", "critical", "api-availability", "otel-collector", job="otel-services", **SCRAPE), set()),
    (_labels("CollectorDown", "critical", "api-availability", "otel-collector", job="otel-collector", **SCRAPE), set()),
    (_labels("ServiceDown", "critical", "api-availability", "cart", job="cart", **GONE), {"CollectorDown"}),
    (_labels("ServiceDown", "critical", "api-availability", "ledger", job="ledger", **GONE), {"CollectorDown"}),
    (_labels("QueueDepthAbsent", "warning", "queue", "worker", **GONE), {"CollectorDown"}),
    # ... but not a directly scraped job that is down on its own, nor other alerts
    (_labels("ServiceDown", "critical", "api-availability", "node", job="node", **SCRAPE), set()),
    (_labels("HostDiskUsageHigh", "warning", "host-disk", "node", instance="n-1", mountpoint="/"), set()),
]


@pytest.mark.parametrize("table", [INHIBITION, COLLECTOR_DOWN], ids=["services", "collector-down"])
def test_inhibition(
    tmp_path: Path, sinks: tuple[SmtpSink, PagerDutyDouble, WebhookSink], table: list[tuple[dict[str, str], set[str]]]
) -> None:
    """Alertmanager reports one inhibiting rule's sources (the first that matches), so each row names them."""
    smtp, pagerduty, heartbeat = sinks
    config = write_test_copy(
        tmp_path, smtp_smarthost=smtp.smarthost, pagerduty_url=pagerduty.url, heartbeat_url=heartbeat.url
    )
    manager = Alertmanager("alertmanager", config, tmp_path)
    try:
        manager.wait_ready()
        manager.post_alerts([alert(labels) for labels, _ in table])
        expected = {_key(labels): sources for labels, sources in table}
        assert len(expected) == len(table), "two table rows with the same key"

        def observed() -> dict[tuple[str, str, str, str], set[str]]:
            alerts = manager.alerts()
            names = {a["fingerprint"]: a["labels"]["alertname"] for a in alerts}
            return {_key(a["labels"]): {names.get(fp, fp) for fp in a["status"]["inhibitedBy"]} for a in alerts}

        deadline = time.monotonic() + 15
        while observed() != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # every source has been seen: nothing else may become inhibited
        assert observed() == expected
    finally:
        manager.stop()


def _key(labels: dict[str, str]) -> tuple[str, str, str, str]:
    return labels["alertname"], labels["service"], labels.get("instance", ""), labels.get("job", "")


# --- time of week: info only in business hours; warning and critical always ------------------

# (weekday, local time when Alertmanager starts, info e-mailed?) - Mon-Fri 09:00-17:00 in the zone.
BUSINESS_HOURS: list[tuple[str, str, bool]] = [
    ("friday", "16:59:00", True),
    ("friday", "17:01:00", False),
    ("monday", "08:59:00", False),
    ("monday", "09:00:00", True),
    ("wednesday", "12:00:00", True),
    ("saturday", "03:00:00", False),
    ("saturday", "12:00:00", False),
    ("sunday", "10:00:00", False),
]


def test_info_alerts_are_emailed_only_inside_business_hours_and_critical_ones_page_always(
    tmp_path: Path, sinks: tuple[SmtpSink, PagerDutyDouble, WebhookSink]
) -> None:
    smtp, pagerduty, heartbeat = sinks
    config = repo_config()
    [interval] = [i for i in config["time_intervals"] if i["name"] == "business-hours"]
    zone = interval["time_intervals"][0]["location"]
    for route in config["route"]["routes"]:
        route["group_wait"] = "1s"  # timing only: the matchers and active_time_intervals stay as committed
    managers = []
    try:
        # One at a time, each posted to as soon as it is ready: the time of week is computed just
        # before its start, so a slow machine delays one scenario by its own start-up only (the
        # 16:59 one has a minute before 17:00, and its info group flushes after 1s).
        for weekday, clock, _ in BUSINESS_HOURS:
            name = f"{weekday}-{clock[:5].replace(':', '')}"
            directory = tmp_path / name
            path = write_test_copy(
                directory,
                smtp_smarthost=smtp.smarthost,
                pagerduty_url=pagerduty.url,
                heartbeat_url=heartbeat.url,
                config=config,
            )
            write_zone(directory / "zoneinfo", zone, offset_for(weekday, clock))
            manager = Alertmanager(name, path, directory, env={"ZONEINFO": str(directory / "zoneinfo")})
            managers.append((name, manager))
            manager.wait_ready()
            # Three families: a critical alert mutes the warnings and infos of its own family.
            manager.post_alerts(
                [
                    alert({"alertname": "InfoAlert", "severity": "info", "service": name, "family": "i"}),
                    alert({"alertname": "WarningAlert", "severity": "warning", "service": name, "family": "w"}),
                    alert({"alertname": "CriticalAlert", "severity": "critical", "service": name, "family": "c"}),
                ]
            )
        names = {name for name, _ in managers}
        # The warnings (no time restriction) prove each Alertmanager delivers at that time of week.
        warned = smtp.wait_for(lambda m: "WarningAlert" in m.subject and _all_named(smtp, "WarningAlert", names), 30)
        assert {_service(m.subject) for m in warned} == names
        # Critical alerts page (PagerDuty and e-mail) at any time of week, Saturday 03:00 included.
        paged = pagerduty.wait_for(
            lambda e: {_service(x.summary) for x in pagerduty.accepted() if "CriticalAlert" in x.summary} >= names, 30
        )
        assert {_service(e.summary) for e in paged if "CriticalAlert" in e.summary} == names
        mailed = smtp.wait_for(lambda m: "CriticalAlert" in m.subject and _all_named(smtp, "CriticalAlert", names), 30)
        assert {_service(m.subject) for m in mailed} == names
        time.sleep(3)  # the info groups flush on the same 1s group_wait
        informed = {_service(m.subject) for m in smtp.matching(lambda m: "InfoAlert" in m.subject)}
        expected = {name for (name, _), (_, _, inside) in zip(managers, BUSINESS_HOURS, strict=True) if inside}
        assert informed == expected
        assert not smtp.failed_logins
        assert pagerduty.rejected() == []
    finally:
        for _, manager in managers:
            manager.stop()


def test_the_critical_receiver_pages_and_emails() -> None:
    """pagerduty-and-email has one PagerDuty (Events API v2) and one e-mail config, both sending resolutions."""
    [receiver] = [r for r in repo_config()["receivers"] if r["name"] == "pagerduty-and-email"]
    assert set(receiver) == {"name", "pagerduty_configs", "email_configs"}
    [pagerduty] = receiver["pagerduty_configs"]
    [email] = receiver["email_configs"]
    assert pagerduty["routing_key_file"] and "service_key" not in pagerduty  # routing_key: Events API v2
    assert email["to"] and pagerduty["send_resolved"] and email["send_resolved"]
    [route] = [r for r in repo_config()["route"]["routes"] if r.get("matchers") == ['severity="critical"']]
    assert route["receiver"] == "pagerduty-and-email" and "active_time_intervals" not in route
    assert "mute_time_intervals" not in route


def _service(subject: str) -> str:
    return subject.split()[2]  # "[FIRING:1] <alertname> <service> (<severity>)..."


def _all_named(smtp: SmtpSink, alertname: str, names: set[str]) -> bool:
    return {_service(m.subject) for m in smtp.mails if alertname in m.subject} >= names
