"""The stack's exporters (and nginx in front of an app), run exactly as the one-command stack runs them.

The argv, environment and health probe of each come from ``otelkit.devstack.components.build``, pointed at
the test's own PostgreSQL and Redis (as ``./dev stack --postgres-url/--redis-url`` would) and at free
loopback ports, so the Infrastructure dashboard's exporter row is fed by the same programs it is built for.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from otelkit.devstack import components
from otelkit.devstack.configs import STACK_JOBS
from otelkit.devstack.external import ExternalPostgres, ExternalRedis
from otelkit.devstack.ports import DEFAULT_PORTS
from otelkit.devstack.state import StateDir
from tests.support.ports import free_port
from tests.support.processes import Server

EXPORTERS = ("node_exporter", "postgres_exporter", "redis_exporter")
NGINX = ("nginx", "nginx_exporter")


class StackPorts:
    """A port for every port name of the stack; those of ``EXPORTERS`` and ``NGINX`` are held bound until
    ``running`` starts their server, so no server started in between (the collector, Prometheus, uvicorn,
    each on an OS-chosen free port) can be given one of them."""

    def __init__(self) -> None:
        self._held: dict[str, socket.socket] = {}
        for name in (*EXPORTERS, *NGINX):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            self._held[name] = sock
        held = {name: int(sock.getsockname()[1]) for name, sock in self._held.items()}
        self.ports = {name: held.get(name) or free_port() for name in DEFAULT_PORTS}

    def release(self, name: str) -> None:
        """Free ``name``'s port for the server about to bind it."""
        sock = self._held.pop(name, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for name in list(self._held):
            self.release(name)


def moved_targets(ports: dict[str, int], jobs: Sequence[str]) -> dict[str, str]:
    """prometheus.yml's address of each job's exporter -> where ``ports`` puts it."""
    return {f"127.0.0.1:{DEFAULT_PORTS[STACK_JOBS[job]]}": f"127.0.0.1:{ports[STACK_JOBS[job]]}" for job in jobs}


@contextmanager
def running(
    names: Sequence[str], directory: Path, stack_ports: StackPorts, postgres_url: str, redis_url: str
) -> Iterator[None]:
    """Start the stack components ``names`` in order, each healthy before the next; stop them after."""
    ports = stack_ports.ports
    options = components.Options(
        postgres=ExternalPostgres.parse(postgres_url, "the test's PostgreSQL"),
        redis=ExternalRedis.parse(redis_url, "the test's Redis"),
    )
    by_name = {component.name: component for component in components.build(StateDir(directory), ports, options)}
    servers: list[Server] = []
    try:
        for name in names:
            component = by_name[name]
            stack_ports.release(name)
            server = Server(name, component.argv, directory, env=component.env)
            servers.append(server)
            server.wait_until(component.healthy, timeout=component.ready_timeout, what=f"healthy at {component.url}")
        yield
    finally:
        for server in reversed(servers):
            server.stop()
