"""The whole native stack, as ``otelkit stack up`` starts it for a user, on free ports in a temp state dir.

One test on purpose: the stack takes seconds to start and a scrape interval (15 s, the repo's) to show
data, and every assertion below needs it running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otelkit.devstack import StateDir, supervisor
from otelkit.devstack.stack import COMPONENT_NAMES

OTELKIT = str(Path(sys.executable).parent / "otelkit")
EXPORTER_JOBS = ("node", "postgres", "redis", "nginx")
PIPELINE_JOBS = ("otel-services", "otel-collector", "prometheus", "alertmanager")


def otelkit_stack(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OTELKIT_STATE_DIR": str(state)}
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


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not tmp_path: as root, PostgreSQL runs as the postgres user, who must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="otelkit-stack-"))
    root.chmod(0o755)
    yield root
    otelkit_stack(root, "down")  # whatever the test did, stop what it started
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_stack_comes_up_serves_demo_traffic_and_goes_down_leaving_nothing(state_dir: Path) -> None:
    first = otelkit_stack(state_dir, "up", "--any-ports", "--traffic-rate=8")
    assert first.returncode == 0, first.stderr
    state = StateDir(state_dir)
    records = {name: supervisor.running(state, name) for name in COMPONENT_NAMES}
    assert all(records.values()), f"not running: {[n for n, r in records.items() if r is None]}"

    status = otelkit_stack(state_dir, "status")
    assert status.returncode == 0, status.stdout
    healthy = {line.split()[0] for line in status.stdout.splitlines() if line.split()[1] == "healthy"}
    assert healthy == set(COMPONENT_NAMES)

    # Idempotent: a second up reuses every process.
    second = otelkit_stack(state_dir, "up", "--any-ports", "--traffic-rate=8")
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("reused") == len(COMPONENT_NAMES), second.stderr
    assert {name: supervisor.running(state, name) for name in COMPONENT_NAMES} == records

    ports = json.loads((state_dir / "ports.json").read_text())
    prometheus = ports["prometheus"]
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
    # Prometheus evaluates the repo's rules and Alertmanager routes them: the Watchdog reaches the
    # heartbeat sink (the critical alerts of an incident take minutes, see stack/README.md).
    heartbeat = state_dir / "sinks" / "heartbeat.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and "Watchdog" not in (heartbeat.read_text() if heartbeat.exists() else ""):
        time.sleep(1)
    assert "Watchdog" in heartbeat.read_text()

    snapshot = otelkit_stack(state_dir, "snapshot")
    assert snapshot.returncode == 0, snapshot.stderr
    assert Path(snapshot.stdout.strip()).is_dir()

    logs = otelkit_stack(state_dir, "logs", "prometheus")
    assert "Server is ready to receive web requests" in logs.stdout

    started = descendants({record.pid for record in records.values() if record is not None})
    down = otelkit_stack(state_dir, "down")
    assert down.returncode == 0, down.stderr
    left = {pid for pid in started if supervisor.start_ticks(pid) is not None}
    assert not left, f"left running: {left}"
    assert otelkit_stack(state_dir, "status").returncode == 1
