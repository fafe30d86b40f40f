"""End to end on loopback: otelkit app -> Prometheus (the generated rules) -> Alertmanager (the repo's
config) -> a real SMTP server and a PagerDuty Events API v2 double.

The app serves 6% 503s. The critical HttpErrorRateHigh (> 5%) must be e-mailed and triggered at
PagerDuty within the expected time, the warnings of its family (the SLO burn-rate warnings, which
fire too at 6%) must be inhibited and never e-mailed, and once the errors stop the PagerDuty
incident must be resolved. The test copy of the rules only shortens `for` (to 5s) and Prometheus's
scrape/evaluation intervals (to 1s); thresholds and windows are the committed ones. Alertmanager's
config is the committed one rewritten for addresses and secret files only, so its timings
(critical group_wait 10s and group_interval 1m, warning group_wait 1m) are the real ones.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alertmanager import ROUTING_KEY, SMTP_PASSWORD, SMTP_USER, Alertmanager, write_test_copy
from tests.support.pagerduty import PagerDutyDouble
from tests.support.ports import free_port
from tests.support.processes import Server
from tests.support.prometheus import Prometheus, write_prometheus_config, write_rules
from tests.support.smtp_sink import SmtpSink
from tests.support.traffic import Traffic
from tests.support.webhook_sink import WebhookSink

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Traffic until 100 requests (4s) + `for` (5s) + scrape and evaluation (~2s) + critical group_wait (10s),
# with room for a slow machine.
TRIGGER_WITHIN = 45.0
# The 5m error ratio falls under 5% within seconds + the critical group_interval (1m).
RESOLVE_WITHIN = 100.0
WARNING_GROUP_WAIT = 60.0


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "tests.support.error_app:app", "--host", "127.0.0.1"]
    server = Server(
        "app", [*argv, "--port", str(port), "--log-level", "warning"], tmp_path, env={"PYTHONPATH": str(ROOT)}
    )
    try:
        server.wait_http(f"http://127.0.0.1:{port}/metrics")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _is(alertname: str, severity: str) -> Any:
    return lambda item: (
        f"] {alertname} checkout ({severity})" in (item.subject if hasattr(item, "subject") else item.summary)
    )


def test_six_percent_errors_page_then_resolve(tmp_path: Path, app: str) -> None:
    write_rules(tmp_path / "rules")
    with (
        SmtpSink(SMTP_USER, SMTP_PASSWORD) as smtp,
        PagerDutyDouble() as pagerduty,
        WebhookSink() as heartbeat,
    ):
        am_config = write_test_copy(
            tmp_path / "am", smtp_smarthost=smtp.smarthost, pagerduty_url=pagerduty.url, heartbeat_url=heartbeat.url
        )
        alertmanager = Alertmanager("alertmanager", am_config, tmp_path)
        prometheus = None
        try:
            alertmanager.wait_ready()
            port = int(app.rsplit(":", 1)[1])
            prometheus = Prometheus(write_prometheus_config(tmp_path, port, [alertmanager.url]), tmp_path)
            prometheus.wait_ready()
            started = time.monotonic()
            with Traffic(f"{app}/work", per_second=25, failing=3, per=50) as traffic:
                _page_then_resolve(smtp, pagerduty, alertmanager, traffic, started)
                assert not traffic.unexpected[:5]
            assert heartbeat.wait_for_count(1, timeout=5) >= 1, "the Watchdog never reached the heartbeat receiver"
            assert pagerduty.rejected() == []
            assert smtp.failed_logins == []
        finally:
            if prometheus is not None:
                prometheus.stop()
            alertmanager.stop()


def _page_then_resolve(
    smtp: SmtpSink, pagerduty: PagerDutyDouble, alertmanager: Alertmanager, traffic: Traffic, started: float
) -> None:
    critical = _is("HttpErrorRateHigh", "critical")
    [trigger, *_] = pagerduty.wait_for(lambda e: e.action == "trigger" and critical(e), TRIGGER_WITHIN) or [None]
    assert trigger is not None, f"no PagerDuty trigger within {TRIGGER_WITHIN}s; got {pagerduty.events}"
    triggered_after = time.monotonic() - started
    assert trigger.body["routing_key"] == ROUTING_KEY  # read from the secret file (its newline trimmed)
    assert trigger.body["payload"]["severity"] == "critical"
    assert trigger.summary.endswith("Runbook: https://runbooks.prodstack.local/api-errors")
    assert {"href": "https://runbooks.prodstack.local/api-errors", "text": "runbook"} in trigger.body["links"]

    [mail, *_] = smtp.wait_for(critical, timeout=10) or [None]
    assert mail is not None, "the critical alert was not e-mailed"
    assert mail.recipients == ["oncall@prodstack.local"]
    assert "Runbook: https://runbooks.prodstack.local/api-errors" in mail.part("text/plain")
    assert "of checkout's requests returned 5xx over the last 5m (threshold 5%)" in mail.part("text/plain")
    emailed_after = time.monotonic() - started

    traffic.stop_errors()
    errors_stopped = time.monotonic()

    warning = _wait_for_inhibited_warning(alertmanager)
    inhibited_since = time.monotonic()

    resolved = pagerduty.wait_for(lambda e: e.action == "resolve" and e.dedup_key == trigger.dedup_key, RESOLVE_WITHIN)
    assert resolved, f"the incident was not resolved within {RESOLVE_WITHIN}s of the errors stopping"
    resolved_after = time.monotonic() - errors_stopped

    # The warning group's flush (group_wait 1m after the warnings arrived) has passed: still nothing.
    time.sleep(max(0.0, inhibited_since + WARNING_GROUP_WAIT + 5 - time.monotonic()))
    warnings_sent = smtp.matching(lambda m: "(warning)" in m.subject)
    assert warnings_sent == [], [m.subject for m in warnings_sent]
    print(
        f"\ne2e: PagerDuty trigger {triggered_after:.1f}s and e-mail {emailed_after:.1f}s after the errors began; "
        f"resolved {resolved_after:.1f}s after they stopped; inhibited warning: {warning}"
    )


def _wait_for_inhibited_warning(alertmanager: Alertmanager, timeout: float = 30.0) -> str:
    """The burn-rate warning is in Alertmanager, and muted by a critical alert of its family."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alerts = alertmanager.alerts()
        names = {a["fingerprint"]: a["labels"]["alertname"] for a in alerts}
        for a in alerts:
            labels = a["labels"]
            if labels.get("severity") == "warning" and labels.get("family") == "api-errors":
                assert a["status"]["state"] == "suppressed", a
                sources = sorted(names.get(fp, fp) for fp in a["status"]["inhibitedBy"])
                assert sources, a
                return f"{labels['alertname']}{{long={labels.get('long')}}} inhibited by {sources}"
        time.sleep(0.5)
    raise AssertionError(f"no api-errors warning reached Alertmanager within {timeout}s")
