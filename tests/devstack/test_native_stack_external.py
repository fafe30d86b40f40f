"""The native stack on the user's own PostgreSQL and Redis (``up --postgres-url/--redis-url``): here the
test session's servers, which the stack must use, show as external and never stop."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from otelkit.devstack import StateDir, supervisor
from otelkit.devstack.stack import COMPONENT_NAMES
from tests.devstack.test_native_stack import otelkit_stack, state_directory, wait_for_series

pytestmark = pytest.mark.slow

PASSWORD = "not-a-real-password"  # the session's PostgreSQL trusts loopback: any password logs in
DATABASE = "otelkit_stack_external"
REDIS_DB = 7


def libpq(url: str, database: str = "postgres", password: str | None = None) -> str:
    """The session fixture's SQLAlchemy URL as ``postgresql://user[:password]@host:port/database``."""
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user}:{password}@{host}" if password else parts.netloc
    return urllib.parse.urlunsplit(("postgresql", netloc, f"/{database}", "", ""))


@pytest.fixture
def servers(postgres_url: str, redis_url: str) -> Iterator[tuple[str, str]]:
    """A database and a Redis db of the session's servers for the stack alone, removed afterwards."""
    with psycopg.connect(libpq(postgres_url), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {DATABASE}")
    redis_db = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    try:
        yield libpq(postgres_url, DATABASE, PASSWORD), redis_db
    finally:
        redis.Redis.from_url(redis_db).flushdb()
        with psycopg.connect(libpq(postgres_url), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    root = state_directory()
    yield root
    otelkit_stack(root, "down")
    shutil.rmtree(root, ignore_errors=True)


def test_the_stack_uses_given_servers_shows_them_external_and_never_stops_them(
    state_dir: Path, servers: tuple[str, str]
) -> None:
    postgres, redis_db = servers
    # One from the option, one from the environment variable, as a user may mix them.
    env = {"OTELKIT_STACK_REDIS_URL": redis_db}
    up = otelkit_stack(state_dir, "up", "--any-ports", "--scrape-interval=5s", f"--postgres-url={postgres}", env=env)
    assert up.returncode == 0, up.stderr
    assert PASSWORD not in up.stderr
    state = StateDir(state_dir)
    running = {name for name in COMPONENT_NAMES if supervisor.running(state, name)}
    assert running == set(COMPONENT_NAMES) - {"postgres", "redis"}
    # No command line (ps, the logs' start lines) carries the password; the environment does.
    for name in running:
        record = supervisor.running(state, name)
        assert record is not None
        assert PASSWORD not in Path(f"/proc/{record.pid}/cmdline").read_text(), name
    assert not [log.name for log in (state_dir / "logs").iterdir() if PASSWORD in log.read_text(errors="replace")]

    status = otelkit_stack(state_dir, "status", env=env)
    assert status.returncode == 0, status.stdout
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()}
    assert rows["postgres"][1:3] == ["healthy", "external"]
    assert rows["postgres"][3] == postgres.replace(PASSWORD, "***")
    assert rows["redis"][1:] == ["healthy", "external", redis_db]

    # The demo and both exporters work on the given servers: the stack started none of its own.
    prometheus = json.loads((state_dir / "ports.json").read_text())["prometheus"]
    wait_for_series(prometheus, "pg_up == 1")
    wait_for_series(prometheus, "redis_up == 1")
    wait_for_series(prometheus, f'pg_stat_database_numbackends{{datname="{DATABASE}"}} > 0')  # the demo's pool
    with psycopg.connect(postgres) as connection:
        wait_for_series(prometheus, 'sum(payment_requests_total{job="demo"}) > 0')
        orders = connection.execute("SELECT count(*) FROM demo_orders").fetchone()
    assert orders is not None and orders[0] > 0
    cache = redis.Redis.from_url(redis_db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not cache.keys("generation:*"):
        time.sleep(1)
    assert cache.keys("generation:*")  # the demo's cache of generations

    down = otelkit_stack(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert f"{len(running)} stopped" in down.stderr
    # Still there, and still serving.
    with psycopg.connect(postgres) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert cache.ping()
