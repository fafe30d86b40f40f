"""``otelkit stack up|status|logs NAME|down|snapshot``: the local stack (machinery in otelkit.devstack)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otelkit.devstack import StateDir, default_state_dir
from otelkit.devstack.components import Options
from otelkit.devstack.external import POSTGRES_URL_ENV, REDIS_URL_ENV, BadURL, ExternalPostgres, ExternalRedis
from otelkit.devstack.stack import COMPONENT_NAMES, StackError, down, log_path, snapshot, status, up


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("stack", help="the local stack: collector, Prometheus, Alertmanager, demo service")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="PID files, logs, data (default $OTELKIT_STATE_DIR or .otelkit/stack)",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    start = actions.add_parser("up", help="start what is not running (a second up reuses what runs)")
    start.add_argument("--any-ports", action="store_true", help="OS-chosen free ports instead of the usual ones")
    start.add_argument("--traffic-rate", type=float, default=6.0, help="demo requests per second")
    start.add_argument(
        "--first-incident-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="when the traffic's first incident (~10%% 5xx) starts; 0 = at once (default 60)",
    )
    start.add_argument(
        "--scrape-interval",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="Prometheus scrape and rule evaluation interval, e.g. 5s (default: the repo's, 15s)",
    )
    start.add_argument(
        "--postgres-url",
        default=None,
        metavar="URL",
        help=f"use this PostgreSQL instead of starting one (default ${POSTGRES_URL_ENV})",
    )
    start.add_argument(
        "--redis-url",
        default=None,
        metavar="URL",
        help=f"use this Redis instead of starting one (default ${REDIS_URL_ENV})",
    )
    actions.add_parser("status", help="every component, its URL and health (exit 1 if any is down)")
    logs = actions.add_parser("logs", help="a component's log")
    logs.add_argument("name", choices=[*COMPONENT_NAMES, "nginx-access"])
    logs.add_argument("-n", "--lines", type=int, default=100)
    actions.add_parser("down", help="stop exactly what up started (data is kept)")
    actions.add_parser("snapshot", help="a Prometheus TSDB snapshot (admin API) for backups")
    parser.set_defaults(handler=run)


def _duration(value: str) -> str:
    """A Prometheus duration of whole seconds or minutes, checked here rather than by a failing Prometheus."""
    if not re.fullmatch(r"[1-9][0-9]*(s|m)", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 5s or 1m")
    return value


def _external(given: str | None, option: str, variable: str, parse: Callable[[str, str], Any]) -> Any:
    """The server ``option`` (else ``$variable``) names, parsed; None when neither is set."""
    if given:
        return parse(given, option)
    from_env = os.environ.get(variable)
    return parse(from_env, f"${variable}") if from_env else None


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        traffic_rate=args.traffic_rate,
        first_incident_after=args.first_incident_after,
        scrape_interval=args.scrape_interval,
        postgres=_external(args.postgres_url, "--postgres-url", POSTGRES_URL_ENV, ExternalPostgres.parse),
        redis=_external(args.redis_url, "--redis-url", REDIS_URL_ENV, ExternalRedis.parse),
    )


def run(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir.resolve() if args.state_dir else default_state_dir())
    try:
        if args.action == "up":
            up(state, options_from(args), any_ports=args.any_ports)
        elif args.action == "status":
            return print_status(state)
        elif args.action == "logs":
            path = log_path(state, args.name)
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            print("\n".join(lines[-args.lines :]))
        elif args.action == "down":
            down(state)
        elif args.action == "snapshot":
            print(snapshot(state))
    except (StackError, BadURL) as error:
        print(f"otelkit stack {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


def print_status(state: StateDir) -> int:
    rows = status(state)
    for row in rows:
        health = "healthy" if row.healthy else ("UNHEALTHY" if row.pid or row.external else "stopped")
        pid = "external" if row.external else str(row.pid) if row.pid else "-"
        print(f"{row.name:<18} {health:<10} {pid:>8}  {row.url}")
    return 0 if all(row.healthy for row in rows) else 1
