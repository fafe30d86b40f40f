"""``up``, ``down``, ``status``, ``logs`` and ``snapshot`` of the local stack.

``up`` is idempotent: a component whose process still runs with the same command line, environment
and config files is reused; one whose config changed is restarted; the rest are started in order,
each waited for until healthy. If any fails, what this run started is stopped again and the error
names the component and shows its log: never a half-started stack.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from otelkit.devstack import components, ports, supervisor
from otelkit.devstack.binaries import MissingProgram
from otelkit.devstack.components import Options
from otelkit.devstack.state import REPO, StateDir

PORT_OWNERS: dict[str, str] = {
    "postgres": "postgres",
    "redis": "redis",
    "smtp_sink": "sinks",
    "pagerduty_sink": "sinks",
    "otlp_grpc": "collector",
    "otlp_http": "collector",
    "collector_exporter": "collector",
    "collector_telemetry": "collector",
    "collector_health": "collector",
    "alertmanager": "alertmanager",
    "prometheus": "prometheus",
    "node_exporter": "node_exporter",
    "postgres_exporter": "postgres_exporter",
    "redis_exporter": "redis_exporter",
    "demo": "demo",
    "nginx": "nginx",
    "nginx_exporter": "nginx_exporter",
}
COMPONENT_NAMES = (
    "postgres",
    "redis",
    "sinks",
    "collector",
    "alertmanager",
    "prometheus",
    "node_exporter",
    "postgres_exporter",
    "redis_exporter",
    "demo",
    "nginx",
    "nginx_exporter",
    "synthetic",
    "traffic",
)


class StackError(RuntimeError):
    """``up`` could not bring the stack up; what it had started is stopped again."""


Say = Callable[[str], None]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    url: str
    healthy: bool
    external: bool = False
    """A server the user runs (``--postgres-url``/``--redis-url``): probed, never started or stopped."""


def _ports(state: StateDir, *, any_ports: bool, external: Collection[str], say: Say) -> dict[str, int]:
    previous = state.read_json("ports.json") or {}
    alive = {name for name in COMPONENT_NAMES if supervisor.running(state, name)}
    keep = {port for port, owner in PORT_OWNERS.items() if owner in alive}
    skip = {port for port, owner in PORT_OWNERS.items() if owner in external}
    chosen, notes = ports.allocate(previous, keep, any_ports=any_ports, skip=skip)
    for note in notes:
        say(f"    note: {note}")
    state.write_json(chosen, "ports.json")
    return chosen


def up(state: StateDir, options: Options | None = None, *, any_ports: bool = False, say: Say = _say) -> None:
    began = time.monotonic()
    options = options or Options()
    external = options.external()
    previous = state.read_json("ports.json") or {}
    for name, server in external.items():
        own = supervisor.running(state, name) and previous.get(name)
        if own == server.port and server.host in ("127.0.0.1", "localhost"):  # it would be stopped below
            raise StackError(f"{server.source} {server.redacted} is the stack's own {name}: give another server")
        problem = server.problem()
        if problem is not None:
            raise StackError(f"{server.source} {server.redacted}: {problem}")
        say(f"==> {name}: external, {server.redacted} (not started or stopped by the stack)")
    try:
        chosen = _ports(state, any_ports=any_ports, external=external, say=say)
        say("==> collector/build.sh (cached: instant; a first build takes minutes)")
        stack = components.build(state, chosen, options)
    except MissingProgram as error:
        raise StackError(str(error)) from error
    options.save(state)
    for name in external:  # the stack's own server, from an up without the URL, is not needed any more
        if supervisor.stop(state, name):
            say(f"    stopped the stack's own {name}: {external[name].source} replaces it")
    started: list[str] = []
    say(f"==> otelkit stack up ({len(stack)} components, state in {state.root})")
    for index, component in enumerate(stack, 1):
        prefix = f"[{index:2}/{len(stack)}] {component.name:<17}"
        wanted = supervisor.fingerprint(component.argv, component.env, component.config_files)
        record = supervisor.running(state, component.name)
        if record is not None and record.fingerprint == wanted and component.healthy():
            say(f"{prefix} running (pid {record.pid}), reused")
            continue
        if record is not None:
            say(f"{prefix} config changed: restarting")
            supervisor.stop(state, component.name)
        t0 = time.monotonic()
        try:
            if component.prepare is not None:
                component.prepare()
            record = supervisor.start(
                state,
                component.name,
                component.argv,
                env=component.env,
                cwd=REPO,
                fingerprint_value=wanted,
                stop_signal=component.stop_signal,
            )
            started.append(component.name)
            _wait_healthy(state, component)
        except Exception as error:
            say(f"{prefix} FAILED: {error}")
            for name in reversed(started):
                supervisor.stop(state, name)
            if started:
                say(f"    stopped what this run started: {', '.join(reversed(started))}")
            raise StackError(f"{component.name} did not come up: {error}") from error
        say(f"{prefix} started (pid {record.pid}) in {time.monotonic() - t0:.1f}s")
    say(f"==> stack up in {time.monotonic() - began:.1f}s")


def _wait_healthy(state: StateDir, component: components.Component) -> None:
    deadline = time.monotonic() + component.ready_timeout
    while time.monotonic() < deadline:
        if supervisor.running(state, component.name) is None:
            raise RuntimeError(f"it exited; the end of {state.log(component.name)}:\n{_tail(state, component.name)}")
        if component.healthy():
            return
        time.sleep(0.2)
    raise RuntimeError(f"not healthy after {component.ready_timeout:.0f}s:\n{_tail(state, component.name)}")


def _tail(state: StateDir, name: str, lines: int = 30) -> str:
    path = state.log(name)
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def down(state: StateDir, *, say: Say = _say) -> list[str]:
    """Stop every component this state dir records, last started first; the names stopped."""
    stopped = []
    for name in reversed(COMPONENT_NAMES):
        if supervisor.stop(state, name):
            stopped.append(name)
            say(f"    stopped {name}")
    say(f"==> stack down ({len(stopped)} stopped; data kept in {state.root})")
    return stopped


def status(state: StateDir) -> list[ComponentStatus]:
    chosen = state.read_json("ports.json")
    options = Options.load(state)
    try:
        described = {c.name: c for c in components.build(state, chosen, options)} if chosen else {}
    except MissingProgram as error:
        raise StackError(str(error)) from error
    external = options.external()
    result = []
    for name in COMPONENT_NAMES:
        if name in external:
            server = external[name]
            result.append(ComponentStatus(name, None, server.redacted, server.problem() is None, external=True))
            continue
        record = supervisor.running(state, name)
        component = described.get(name)
        healthy = bool(record and component and component.healthy())
        result.append(
            ComponentStatus(name, record.pid if record else None, component.url if component else "", healthy)
        )
    return result


def log_path(state: StateDir, name: str) -> Path:
    if name not in COMPONENT_NAMES and name != "nginx-access":
        raise StackError(f"no component {name!r}: one of {', '.join(COMPONENT_NAMES)}")
    return state.log(name)


def snapshot(state: StateDir) -> Path:
    """A TSDB snapshot through Prometheus's admin API (the spec's daily backup); its directory."""
    chosen = state.read_json("ports.json")
    if not chosen or supervisor.running(state, "prometheus") is None:
        raise StackError("prometheus is not running: otelkit stack up first")
    request = urllib.request.Request(
        f"http://127.0.0.1:{chosen['prometheus']}/api/v1/admin/tsdb/snapshot", method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        name = json.loads(response.read())["data"]["name"]
    return state.root / "prometheus" / "data" / "snapshots" / name
