"""Loopback ports for the stack: the usual ones when free, another free one when not, kept across runs."""

from __future__ import annotations

import socket
from collections.abc import Collection

DEFAULT_PORTS: dict[str, int] = {
    "postgres": 5432,
    "redis": 6379,
    "smtp_sink": 1025,
    "pagerduty_sink": 8025,
    "otlp_grpc": 4317,
    "otlp_http": 4318,
    "collector_exporter": 8889,
    "collector_telemetry": 8888,
    "collector_health": 13133,
    "alertmanager": 9093,
    "prometheus": 9090,
    "node_exporter": 9100,
    "postgres_exporter": 9187,
    "redis_exporter": 9121,
    "demo": 8000,
    "nginx": 8080,
    "nginx_exporter": 9113,
}


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def allocate(
    previous: dict[str, int],
    keep: set[str],
    *,
    any_ports: bool,
    taken: set[int] | None = None,
    skip: Collection[str] = (),
) -> tuple[dict[str, int], list[str]]:
    """Ports for every name in DEFAULT_PORTS, and a note for each that could not have its usual one.

    ``keep``: names whose port a running component holds (kept as is). Otherwise the port used last
    time, else the default (``any_ports``: an OS-chosen one), if free; else any free port. ``skip``:
    names that get no port (the user's own PostgreSQL on 5432 is no reason for a note).
    """
    chosen: dict[str, int] = {}
    notes: list[str] = []
    used = set(taken or ())
    for name, default in DEFAULT_PORTS.items():
        if name in skip:
            continue
        if name in keep and name in previous:
            chosen[name] = previous[name]
        else:
            wanted = previous.get(name) or (0 if any_ports else default)
            if wanted and wanted not in used and is_free(wanted):
                chosen[name] = wanted
            else:
                chosen[name] = _fresh(used)
                if wanted:
                    notes.append(f"port {wanted} is taken: {name} uses {chosen[name]}")
        used.add(chosen[name])
    return chosen, notes


def _fresh(used: set[int]) -> int:
    while True:
        port = any_free_port()
        if port not in used:
            return port
