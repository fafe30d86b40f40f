"""The whole native stack, as ``otelkit stack up`` starts it for a user, on free ports in a temp state dir.

One stack for the module (it takes seconds to start and minutes to page), the tests in file order, the
last one taking it down. It starts the way a user gets a page soonest (stack/README.md): the traffic's
incident at once (``--first-incident-after=0``) and Prometheus scraping and evaluating every 5s
(``--scrape-interval=5s``); the rules, their ``for`` durations and Alertmanager's routing are the repo's.
The incident is asserted late, so the minutes its ``for: 2m`` takes overlap the other tests; the Watchdog (whose
first notification needs a minute) and the dashboards after it, when that wait is over and the traffic has
filled every panel's window.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grafana.dashboards_src.config import EXPORTER_ROW_TITLE
from otelkit.devstack import StateDir, supervisor
from otelkit.devstack.stack import COMPONENT_NAMES
from tests.grafana.dashboards import BUILT_INS, load_dashboards, substitute, targets, variables

pytestmark = pytest.mark.slow

OTELKIT = str(Path(sys.executable).parent / "otelkit")
EXPORTER_JOBS = ("node", "postgres", "redis", "nginx")
PIPELINE_JOBS = ("otel-services", "otel-collector", "prometheus", "alertmanager")
UP_ARGS = ("up", "--any-ports", "--traffic-rate=8", "--first-incident-after=0", "--scrape-interval=5s")
PAGE_TIMEOUT = 360.0
"""Generous: the page comes about 2.5 minutes after up (the rule's for: 2m), later on a loaded machine."""
ALL = {"service": ".*", "instance": ".*", "check": ".*", **BUILT_INS}
"""The dashboards' variables as a user opening them finds them: "All"."""
PANELS_TIMEOUT = 90.0
"""Bounds a failing run only: at this point of the module every panel has had minutes of traffic."""
SLOW_GROUP_PANELS = {
    "sla-slo / Error budget remaining (30d) / A": "job:http_requests:error_ratio_rate30d",
    "sla-slo / Check uptime (30d) / A": "job_check:synthetic_checks:success_ratio_rate30d",
}
"""Panels on ``sla.yml``'s 7d/30d recording rules, a group Prometheus evaluates every 5m: its first evaluation
comes at a moment of its own in the first 5 minutes, maybe after this test, and what it records then (NaN for a
check not run twice yet) stays until the next. Rather than wait up to 5 minutes more, the test reads these
panels with the rule's own expression (as Prometheus's rules API has it) in place of the recorded series."""
NOT_YET_DRAWN_CHECKS = {
    "api-docs": "synthetic/checks.yaml runs it every 300 s: when this test runs it has run once, over a minute "
    "ago, so the panels rating checks over 1m (success ratio, P95 duration) find no run of it in their window, "
    "and the longer windows (1h, 30d) see that one run only if its counters' declared 0 was scraped before it "
    "(the runner's random first delay decides). Its series may be NaN until its second run, about 5 minutes in; "
    "its status series must be there like every other check's.",
}
"""Synthetic checks whose series may be NaN (still present: a panel draws no line for them yet)."""


def otelkit_stack(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OTELKIT_STATE_DIR": str(state), **(env or {})}
    return subprocess.run([OTELKIT, "stack", *args], env=env, capture_output=True, text=True, timeout=600, check=False)


def descendants(pids: set[int]) -> set[int]:
    """``pids`` and every process below them (postgres backends start their own sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found = set(pids)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def prometheus_query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]["result"]


def wait_for_series(port: int, expr: str, timeout: float = 90.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = prometheus_query(port, expr)
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"no series for {expr} after {timeout}s")


def slow_records(port: int) -> dict[str, str]:
    """Recorded series of the groups evaluated less often than this test waits -> the rule's expression."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules?type=record", timeout=10) as response:
        groups = json.loads(response.read())["data"]["groups"]
    return {
        rule["name"]: rule["query"] for group in groups if group["interval"] > PANELS_TIMEOUT for rule in group["rules"]
    }


def inline_records(expr: str, records: dict[str, str]) -> str:
    """``expr`` reading each of ``records`` through its rule's expression. For "All" only: the selector, all of
    whose matchers are ``=~".*"``, is dropped."""

    def inline(match: re.Match[str]) -> str:
        assert re.fullmatch(r'(\{\w+=~"\.\*"(, \w+=~"\.\*")*\})?', match[2] or ""), match[0]
        return f"({records[match[1]]})"

    names = "|".join(re.escape(name) for name in records)
    return re.sub(r"(?<![\w:])(" + names + r")(\{[^}]*\})?(?![\w:])", inline, expr) if records else expr


def shows_data(result: list[dict[str, Any]]) -> bool:
    """Some series, each with a finite value (a check of NOT_YET_DRAWN_CHECKS may be NaN, if another is not)."""
    finite = [math.isfinite(float(series["value"][1])) for series in result]
    excused = [series["metric"].get("check") in NOT_YET_DRAWN_CHECKS for series in result]
    return any(finite) and all(ok or excuse for ok, excuse in zip(finite, excused, strict=True))


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_line(path: Path, matches: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    """The first JSON line of ``path`` that ``matches``, once one is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [record for record in json_lines(path) if matches(record)]
        if found:
            return found[0]
        time.sleep(2)
    raise AssertionError(f"nothing matching in {path} after {timeout}s; it holds:\n{json_lines(path)}")


def state_directory() -> Path:
    # Not tmp_path: as root, PostgreSQL runs as the postgres user, who must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="otelkit-stack-"))
    root.chmod(0o755)
    return root


@dataclass
class Stack:
    root: Path
    records: dict[str, supervisor.ProcessRecord | None]

    @property
    def ports(self) -> dict[str, int]:
        return json.loads((self.root / "ports.json").read_text())


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    root = state_directory()
    try:
        first = otelkit_stack(root, *UP_ARGS)
        assert first.returncode == 0, first.stderr
        state = StateDir(root)
        yield Stack(root, {name: supervisor.running(state, name) for name in COMPONENT_NAMES})
    finally:
        otelkit_stack(root, "down")  # whatever the tests did, stop what was started
        shutil.rmtree(root, ignore_errors=True)


def test_every_component_runs_healthy_and_a_second_up_reuses_them(stack: Stack) -> None:
    assert all(stack.records.values()), f"not running: {[n for n, r in stack.records.items() if r is None]}"
    status = otelkit_stack(stack.root, "status")
    assert status.returncode == 0, status.stdout
    healthy = {line.split()[0] for line in status.stdout.splitlines() if line.split()[1] == "healthy"}
    assert healthy == set(COMPONENT_NAMES)

    second = otelkit_stack(stack.root, *UP_ARGS)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("reused") == len(COMPONENT_NAMES), second.stderr
    state = StateDir(stack.root)
    assert {name: supervisor.running(state, name) for name in COMPONENT_NAMES} == stack.records


def test_prometheus_scrapes_every_exporter_and_the_demo_traffic(stack: Stack) -> None:
    prometheus = stack.ports["prometheus"]
    for job in (*EXPORTER_JOBS, *PIPELINE_JOBS):
        assert wait_for_series(prometheus, f'up{{job="{job}"}} == 1'), job
    # Each exporter reaches what it watches, not only answers.
    for expr in ("pg_up == 1", "redis_up == 1", "nginx_up == 1", "node_cpu_seconds_total"):
        wait_for_series(prometheus, expr)
    # The demo's traffic, through nginx and the OTLP path, by the spec's names.
    for expr in (
        'sum(http_requests_total{job="demo"}) > 0',
        'sum(generation_requests_total{job="demo"}) > 0',
        'sum(payment_requests_total{job="demo"}) > 0',
        'sum(user_registrations_total{job="demo"}) > 0',
        'queue_depth{job="demo", queue="emails"}',
        'nginx_http_requests_total{job="nginx"} > 0',
    ):
        wait_for_series(prometheus, expr)
    # The Business KPIs dashboard's active-users panel: the demo counts the users its traffic names.
    active = wait_for_series(prometheus, 'active_users{job="demo"} > 0')
    assert {series["metric"]["timeframe"] for series in active} == {"1d", "7d", "30d"}


def test_snapshot_and_logs(stack: Stack) -> None:
    snapshot = otelkit_stack(stack.root, "snapshot")
    assert snapshot.returncode == 0, snapshot.stderr
    assert Path(snapshot.stdout.strip()).is_dir()
    logs = otelkit_stack(stack.root, "logs", "prometheus")
    assert "Server is ready to receive web requests" in logs.stdout


def test_the_traffic_incident_pages_pagerduty_and_sends_the_email(stack: Stack) -> None:
    """The traffic's 5xx share passes 5%: the repo's HttpErrorRateHigh fires after its 2 minutes and the
    repo's routing sends it, critical, to PagerDuty (Events API v2, validated by the sink) and e-mail."""
    sinks = stack.root / "sinks"
    event = wait_for_line(
        sinks / "pagerduty.jsonl",
        lambda record: "HttpErrorRateHigh" in str(record["event"].get("payload", {}).get("summary")),
        timeout=PAGE_TIMEOUT,
    )
    assert event["errors"] == []  # PagerDuty would accept it
    body = event["event"]
    assert body["routing_key"] == (stack.root / "secrets" / "pagerduty_routing_key").read_text()
    assert body["event_action"] == "trigger"
    assert body["dedup_key"]
    payload = body["payload"]
    assert payload["severity"] == "critical"
    assert re.match(
        r"\[FIRING:\d+\] HttpErrorRateHigh demo \(critical\): More than 5% of HTTP requests fail with a server "
        r"error\. Runbook: https://runbooks\.prodstack\.local/api-errors$",
        payload["summary"],
    ), payload["summary"]
    assert payload["custom_details"]["service"] == "demo"

    mail = wait_for_line(
        sinks / "mail.jsonl", lambda record: "HttpErrorRateHigh" in record["subject"], timeout=PAGE_TIMEOUT
    )
    assert re.fullmatch(r"\[FIRING:\d+\] HttpErrorRateHigh demo \(critical\)", mail["subject"]), mail["subject"]
    assert mail["to"] == ["oncall@prodstack.local"]
    assert "More than 5% of HTTP requests fail with a server error." in mail["text"]
    assert "Runbook: https://runbooks.prodstack.local/api-errors" in mail["text"]


def test_the_watchdog_reaches_the_heartbeat_sink(stack: Stack) -> None:
    # Prometheus evaluates the repo's rules and Alertmanager routes them to the heartbeat webhook. Run after the
    # incident test: Prometheus's first notification goes out before it has found Alertmanager and the resend
    # comes a minute later, a wait the incident's own `for: 2m` already covers.
    heartbeat = wait_for_line(
        stack.root / "sinks" / "heartbeat.jsonl",
        lambda record: any(a["labels"]["alertname"] == "Watchdog" for a in record["body"]["alerts"]),
        timeout=90,
    )
    assert heartbeat["body"]["receiver"] == "heartbeat"


def test_every_dashboard_panel_shows_data(stack: Stack) -> None:
    """Issue 9: every query of every dashboard panel, "All" chosen, answers the stack's Prometheus with finite
    values, the Infrastructure dashboard's exporter row included (as in tests/grafana/test_dashboard_data.py, but
    against the whole stack with its own traffic). A query passes once it has; the loop ends when all have."""
    prometheus = stack.ports["prometheus"]
    dashboards = load_dashboards()
    for name, variable in ((n, v) for d in dashboards.values() for n, v in variables(d).items()):
        if variable["type"] == "query":  # All is .* (the service variable has no allValue: Grafana lists them)
            assert variable["includeAll"] and variable.get("allValue") in (None, ALL[name]), variable
    everything = list(targets(dashboards))
    assert len([t for t in everything if t.row == EXPORTER_ROW_TITLE]) >= 10, "the exporter row lost its panels"
    assert len(everything) > 60, "the dashboards lost their panels"
    slow = slow_records(prometheus)
    queries = {t.where: inline_records(substitute(t.expr, ALL), slow) for t in everything}
    inlined = {t.where for t in everything if queries[t.where] != substitute(t.expr, ALL)}
    assert inlined == set(SLOW_GROUP_PANELS), inlined
    assert all(record in slow for record in SLOW_GROUP_PANELS.values()), sorted(slow)

    waiting = dict(queries)
    deadline = time.monotonic() + PANELS_TIMEOUT
    while True:
        answers = {where: prometheus_query(prometheus, expr) for where, expr in waiting.items()}
        waiting = {where: expr for where, expr in waiting.items() if not shows_data(answers[where])}
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert waiting == {}, "panels without data:\n" + "\n".join(
        f"{where}: {expr}\n  -> {answers[where]}" for where, expr in waiting.items()
    )
    # The excused checks are there all the same: their status panel shows them.
    status = prometheus_query(prometheus, queries["sla-slo / Check status / A"])
    assert set(NOT_YET_DRAWN_CHECKS) <= {series["metric"]["check"] for series in status}, status


def test_the_demos_sla_endpoints_read_prometheus_and_show_the_synthetic_runners_checks(stack: Stack) -> None:
    """The runner is a process of its own: only through Prometheus can the demo's /sla/uptime see its checks."""
    demo = f"http://127.0.0.1:{stack.ports['demo']}"

    def uptime() -> dict[str, Any]:
        with urllib.request.urlopen(f"{demo}/sla/uptime", timeout=10) as response:
            return json.loads(response.read())

    def api_health_uptime(body: dict[str, Any]) -> float | None:
        return body.get("checks", {}).get("api-health", {}).get("uptime", {}).get("1h")

    # A recorded ratio needs two samples of the runner's counters: a few of its export intervals.
    deadline = time.monotonic() + PANELS_TIMEOUT
    body = uptime()
    while api_health_uptime(body) is None and time.monotonic() < deadline:
        time.sleep(2)
        body = uptime()
    assert body["source"] == "prometheus"
    assert api_health_uptime(body) is not None, body
    assert body["checks"]["api-health"]["up"] is not None
    with urllib.request.urlopen(f"{demo}/sla/status", timeout=10) as response:
        assert json.loads(response.read())["source"] == "prometheus"


def test_down_stops_everything_it_started(stack: Stack) -> None:
    """Last: the stack is gone afterwards."""
    started = descendants({record.pid for record in stack.records.values() if record is not None})
    down = otelkit_stack(stack.root, "down")
    assert down.returncode == 0, down.stderr
    left = {pid for pid in started if supervisor.start_ticks(pid) is not None}
    assert not left, f"left running: {left}"
    assert otelkit_stack(stack.root, "status").returncode == 1
