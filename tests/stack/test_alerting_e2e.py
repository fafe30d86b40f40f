"""End to end on loopback: otelkit app -> Prometheus (the generated rules) -> Alertmanager (the repo's
config) -> a real SMTP server and a PagerDuty Events API v2 double.

The app serves 6% 503s. What that really does, and what the test holds it to:
- critical, paged (PagerDuty and e-mail): HttpErrorRateHigh (> 5% over 5m), HttpErrorBudgetBurn for
  the 6h/30m pair (6x the 0.5% budget = 3%) and ServiceSLAViolated (> 1% errors over 1d). Not the
  1h/5m pair: 14.4x is 7.2%, above 6%.
- warning, never sent: the 1d/2h and 3d/6h burn-rate warnings, muted while the errors still flow by
  a critical alert of their family (api-errors) and service. Alertmanager records one source per
  muted alert (the first critical its inhibition rule finds), so the test requires that source to
  be one of the three firing criticals, and that HttpErrorRateHigh is one of them.
- once the errors stop, HttpErrorRateHigh's PagerDuty incident is resolved (the 1d and 6h windows
  keep the other two open, as they would in production).
The test copy of the rules only shortens `for` (to 5s) and Prometheus's scrape/evaluation intervals
(to 1s); thresholds and windows are the committed ones. Alertmanager's config is the committed one
rewritten for addresses and secret files only, so its timings (critical group_wait 10s and
group_interval 1m, warning group_wait 1m) are the real ones.
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


# What 6% errors page: (alertname, the burn-rate pair's long window or "").
PAGED = {("HttpErrorRateHigh", ""), ("HttpErrorBudgetBurn", "6h"), ("ServiceSLAViolated", "")}
MUTED_WARNINGS = {("HttpErrorBudgetBurn", "1d"), ("HttpErrorBudgetBurn", "3d")}


def _name(alert: dict[str, Any]) -> tuple[str, str]:
    return alert["labels"]["alertname"], alert["labels"].get("long", "")


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

    # Errors still flowing: the criticals of 6% and the warnings they mute.
    muted = _wait_for_muted_warnings(alertmanager)
    paged = {
        name
        for name in ("HttpErrorRateHigh", "HttpErrorBudgetBurn", "ServiceSLAViolated")
        if pagerduty.wait_for(lambda e, n=name: e.action == "trigger" and _is(n, "critical")(e), TRIGGER_WITHIN)
    }
    assert paged == {name for name, _ in PAGED}, f"paged {paged}; events {[e.summary for e in pagerduty.events]}"

    traffic.stop_errors()
    errors_stopped = time.monotonic()

    resolved = pagerduty.wait_for(lambda e: e.action == "resolve" and e.dedup_key == trigger.dedup_key, RESOLVE_WITHIN)
    assert resolved, f"the incident was not resolved within {RESOLVE_WITHIN}s of the errors stopping"
    resolved_after = time.monotonic() - errors_stopped

    # The warning group's flush (group_wait 1m after the warnings arrived) has passed: still nothing.
    time.sleep(max(0.0, errors_stopped + WARNING_GROUP_WAIT + 5 - time.monotonic()))
    warnings_sent = smtp.matching(lambda m: "(warning)" in m.subject)
    assert warnings_sent == [], [m.subject for m in warnings_sent]
    print(
        f"\ne2e: PagerDuty trigger {triggered_after:.1f}s and e-mail {emailed_after:.1f}s after the errors began; "
        f"resolved {resolved_after:.1f}s after they stopped; muted while errors flowed: {muted}"
    )


def _wait_for_muted_warnings(alertmanager: Alertmanager, timeout: float = 30.0) -> str:
    """Until Alertmanager holds exactly the criticals of 6% (PAGED) and the two burn-rate warnings, each
    warning suppressed by one of those criticals; HttpErrorRateHigh must be among them."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = [a for a in alertmanager.alerts() if a["labels"].get("service") == "checkout"]
        # A name may fire more than once: ServiceSLAViolated per breached target (availability, error rate).
        criticals: dict[tuple[str, str], set[str]] = {}
        for alert in seen:
            if alert["labels"]["severity"] == "critical":
                criticals.setdefault(_name(alert), set()).add(alert["fingerprint"])
        warnings = {_name(a): a for a in seen if a["labels"]["severity"] == "warning"}
        if criticals.keys() == PAGED and warnings.keys() == MUTED_WARNINGS:
            sources = {}
            for name, warning in warnings.items():
                assert warning["status"]["state"] == "suppressed", warning
                assert warning["labels"]["family"] == "api-errors"
                inhibited_by = set(warning["status"]["inhibitedBy"])
                assert inhibited_by and inhibited_by <= set().union(*criticals.values()), (warning, criticals)
                sources[name] = sorted(n for n, fps in criticals.items() if fps & inhibited_by)
            return str(sources)
        time.sleep(0.5)
    raise AssertionError(f"Alertmanager never held {PAGED} and {MUTED_WARNINGS}: {[_name(a) for a in seen]}")
