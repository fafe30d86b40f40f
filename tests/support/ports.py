"""Free loopback ports for servers the tests start, and ports that refuse connections."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_refusing: list[socket.socket] = []


def refused_port() -> int:
    """A port on 127.0.0.1 that refuses connections for the rest of this test process: bound and
    never listening. A port that was merely free could be taken by a server another test worker
    starts meanwhile, and a "down" target would then answer."""
    sock = _bound("127.0.0.1", 0)
    _refusing.append(sock)
    return int(sock.getsockname()[1])


@contextlib.contextmanager
def held_ports(addresses: Iterable[str]) -> Iterator[None]:
    """Hold ``host:port`` addresses (bound, refusing) for the block: a server stopped there can be
    restarted on the same ports after, which no other test took meanwhile. A port still in
    TIME_WAIT from the stopped server's connections cannot be bound; it needs no holding either,
    as the OS hands out no such port to ``free_port``."""
    sockets = []
    try:
        for address in addresses:
            host, _, port = address.rpartition(":")
            with contextlib.suppress(OSError):
                sockets.append(_bound(host, int(port)))
        yield
    finally:
        for sock in sockets:
            sock.close()


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, port))
    return sock
