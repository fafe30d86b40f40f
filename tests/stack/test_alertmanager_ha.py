"""High availability: three clustered Alertmanagers on loopback, Prometheus sending to all of them.

One member is killed (SIGKILL) before the alerts fire, the one that would notify first. Each alert
group must still be notified exactly once: the survivors gossip their notification log, and the
second in line waits its turn (--cluster.peer-timeout, 15s by default) and finds the group sent.
Without working clustering each survivor would notify on its own and the counts would be 2.

Alert sources: two scrape targets that refuse connections (ServiceDown for "orders" and "search")
and a static exporter reporting 97% memory (HostMemoryUsageHigh for "inventory"): three critical
groups, each to PagerDuty and e-mail.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alertmanager import SMTP_PASSWORD, SMTP_USER, Alertmanager, write_test_copy
from tests.support.pagerduty import PagerDutyDouble
from tests.support.ports import free_port, refused_port
from tests.support.prometheus import Prometheus, write_prometheus_config, write_rules
from tests.support.smtp_sink import SmtpSink
from tests.support.webhook_sink import WebhookSink

pytestmark = pytest.mark.slow

GROUPS = {("ServiceDown", "orders"), ("ServiceDown", "search"), ("HostMemoryUsageHigh", "inventory")}
PEER_TIMEOUT = 15.0  # Alertmanager's default --cluster.peer-timeout
CRITICAL_GROUP_WAIT = 10.0


@pytest.fixture
def static_exporter() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"# TYPE system_memory_usage_percent gauge\nsystem_memory_usage_percent 97\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_each_group_is_notified_once_with_one_member_killed(tmp_path: Path, static_exporter: str) -> None:
    write_rules(tmp_path / "rules")
    with SmtpSink(SMTP_USER, SMTP_PASSWORD) as smtp, PagerDutyDouble() as pagerduty, WebhookSink() as heartbeat:
        config = write_test_copy(
            tmp_path / "am", smtp_smarthost=smtp.smarthost, pagerduty_url=pagerduty.url, heartbeat_url=heartbeat.url
        )
        cluster_ports = [free_port() for _ in range(3)]
        members = [
            Alertmanager(
                f"alertmanager-{i}",
                config,
                tmp_path,
                cluster_port=port,
                peers=[f"127.0.0.1:{p}" for p in cluster_ports if p != port],
            )
            for i, port in enumerate(cluster_ports)
        ]
        prometheus = None
        try:
            for member in members:
                member.wait_ready()
            _wait_for_cluster(members, size=3)
            first = min(members, key=lambda m: m.status()["cluster"]["name"])  # position 0 notifies first
            os.killpg(first.server.process.pid, signal.SIGKILL)
            first.server.process.wait(10)

            prometheus = Prometheus(_prometheus_config(tmp_path, members, static_exporter), tmp_path)
            prometheus.wait_ready()
            triggers = pagerduty.wait_for(lambda e: e.action == "trigger" and _group(e.summary) in GROUPS, 60)
            assert triggers, f"no notification; PagerDuty got {pagerduty.events}"
            _wait_until(lambda: {_group(e.summary) for e in pagerduty.accepted()} >= GROUPS, timeout=60)
            # Long enough for the last survivor in line to have sent a duplicate, were it going to.
            time.sleep(CRITICAL_GROUP_WAIT + 2 * PEER_TIMEOUT + 5)

            paged = Counter(_group(e.summary) for e in pagerduty.accepted() if e.action == "trigger")
            mailed = Counter(_group(m.subject) for m in smtp.mails if m.subject.startswith("[FIRING"))
            assert {group: paged[group] for group in GROUPS} == dict.fromkeys(GROUPS, 1)
            assert {group: mailed[group] for group in GROUPS} == dict.fromkeys(GROUPS, 1)
            assert pagerduty.rejected() == []
        finally:
            if prometheus is not None:
                prometheus.stop()
            for member in members:
                member.stop()


def _prometheus_config(tmp_path: Path, members: list[Alertmanager], static_exporter: str) -> Path:
    path = write_prometheus_config(tmp_path, free_port(), [member.url for member in members])
    config = yaml.safe_load(path.read_text())
    config["scrape_configs"] = [
        {"job_name": "orders", "static_configs": [{"targets": [f"127.0.0.1:{refused_port()}"]}]},
        {"job_name": "search", "static_configs": [{"targets": [f"127.0.0.1:{refused_port()}"]}]},
        {"job_name": "inventory", "static_configs": [{"targets": [static_exporter]}]},
    ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _group(text: str) -> tuple[str, str]:
    """("ServiceDown", "orders") from "[FIRING:1] ServiceDown orders (critical)..."."""
    words = text.split()
    return (words[1], words[2]) if len(words) > 2 else ("", "")


def _wait_for_cluster(members: list[Alertmanager], size: int, timeout: float = 30.0) -> None:
    def formed() -> bool:
        clusters = [m.status()["cluster"] for m in members]
        return all(c["status"] == "ready" and len(c.get("peers") or []) == size for c in clusters)

    _wait_until(formed, timeout)


def _wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(0.5)
