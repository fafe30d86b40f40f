"""Real PostgreSQL and Redis servers on free loopback ports, for one test session.

``OTELKIT_TEST_POSTGRES_URL`` / ``OTELKIT_TEST_REDIS_URL`` point the tests at servers you run
yourself instead. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import Server, require_binary


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _postgres_accepts(port: int) -> bool:
    ready = subprocess.run(
        [_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "otelkit", "-d", "postgres"],
        capture_output=True,
        check=False,
    )
    return ready.returncode == 0


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql (./dev test does)")
    return found[-1]


@contextmanager
def postgres_server(log_dir: Path) -> Iterator[str]:
    """Yield a SQLAlchemy URL (``postgresql+psycopg://``) for a fresh cluster; remove it after."""
    as_root = os.geteuid() == 0
    data_root = Path(tempfile.mkdtemp(prefix="otelkit-pg-"))
    run_as: list[str] = []
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(data_root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = data_root / "data", free_port()
    subprocess.run(
        [*run_as, _postgres_bin("initdb"), "-D", str(data), "-U", "otelkit", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    server = Server(
        "postgres",
        [
            *run_as,
            _postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(data_root),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=50",
        ],
        log_dir,
    )
    try:
        # An open port is not a ready server ("the database system is starting up"): ask it.
        server.wait_until(lambda: _postgres_accepts(port), what=f"accepting connections on {port}")
        url = f"postgresql+psycopg://otelkit@127.0.0.1:{port}/postgres"
        yield url
    finally:
        server.stop()
        shutil.rmtree(data_root, ignore_errors=True)


@contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    port = free_port()
    server = Server(
        "redis",
        [
            require_binary("redis-server", "redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        log_dir,
    )
    try:
        server.wait_until(lambda: _port_open(port), what=f"listening on {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()
