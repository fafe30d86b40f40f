"""``otelkit stack up|status|logs NAME|down|snapshot``: the local stack (machinery in otelkit.devstack)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from otelkit.devstack import StateDir, default_state_dir
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
    actions.add_parser("status", help="every component, its URL and health (exit 1 if any is down)")
    logs = actions.add_parser("logs", help="a component's log")
    logs.add_argument("name", choices=[*COMPONENT_NAMES, "nginx-access"])
    logs.add_argument("-n", "--lines", type=int, default=100)
    actions.add_parser("down", help="stop exactly what up started (data is kept)")
    actions.add_parser("snapshot", help="a Prometheus TSDB snapshot (admin API) for backups")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir.resolve() if args.state_dir else default_state_dir())
    try:
        if args.action == "up":
            up(state, any_ports=args.any_ports, traffic_rate=args.traffic_rate)
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
    except StackError as error:
        print(f"otelkit stack {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


def print_status(state: StateDir) -> int:
    rows = status(state)
    for row in rows:
        health = "healthy" if row.healthy else ("UNHEALTHY" if row.pid else "stopped")
        pid = str(row.pid) if row.pid else "-"
        print(f"{row.name:<18} {health:<10} {pid:>8}  {row.url}")
    return 0 if all(row.healthy for row in rows) else 1
