"""``otelkit stack up --postgres-url/--redis-url``: the user's own servers instead of the stack's.

Fast: values are checked, and the stack described, before anything starts. The stack running on such
servers end to end is tests/devstack/test_native_stack_external.py (slow).
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

import pytest

from otelkit.cli import main
from otelkit.devstack import StateDir, components, stack, supervisor
from otelkit.devstack.components import Options
from otelkit.devstack.external import BadURL, ExternalPostgres, ExternalRedis, redact
from otelkit.devstack.ports import DEFAULT_PORTS
from tests.support.ports import refused_port

PORTS = {name: 21000 + index for index, name in enumerate(DEFAULT_PORTS) if name not in ("postgres", "redis")}
SECRET = "hunter2-secret"


def libpq(url: str) -> str:
    """The session fixture's SQLAlchemy URL (postgresql+psycopg://) as a plain postgresql:// one."""
    return "postgresql://" + url.partition("://")[2]


def with_password(url: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def up(tmp_path: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["stack", f"--state-dir={tmp_path}", "up", *args])
    return code, capsys.readouterr().err


def test_redact_masks_only_the_password() -> None:
    assert redact(f"postgresql://app:{SECRET}@db:5432/shop?sslmode=require") == (
        "postgresql://app:***@db:5432/shop?sslmode=require"
    )
    assert redact(f"redis://:{SECRET}@cache/0") == "redis://:***@cache/0"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://db.internal/shop?user=app&password={SECRET}",  # libpq takes it from the query too
        f"redis://db.internal:6379/0?password={SECRET}",
        f"postgresql://app:pa/{SECRET}@db.internal:5432/shop",  # unencoded delimiters in the password
        f"postgresql://app:12#{SECRET}@db.internal/shop",
        f"postgresql://app:{SECRET}@[db.internal/shop",  # the parser gives up
    ],
)
def test_no_form_of_password_survives_redaction_or_an_error(url: str) -> None:
    assert SECRET not in redact(url)
    try:
        ExternalPostgres.parse(url, "--postgres-url") if url.startswith("postgresql") else ExternalRedis.parse(url, "x")
    except BadURL as refused:
        assert SECRET not in str(refused) and "pa/" not in str(refused)


@pytest.mark.parametrize(
    ("args", "env", "named", "shown", "reason"),
    [
        (
            [f"--postgres-url=mysql://app:{SECRET}@db/shop"],
            {},
            "--postgres-url",
            "mysql://app:***@db/shop",
            "the scheme must be postgresql or postgres",
        ),
        (
            [f"--postgres-url=postgresql://app:{SECRET}@db:99999/shop"],
            {},
            "--postgres-url",
            "postgresql://app:***@db:99999/shop",
            "the port must be a number from 1 to 65535",
        ),
        (
            [f"--postgres-url=postgresql://app:{SECRET}@/shop"],
            {},
            "--postgres-url",
            "postgresql://app:***@/shop",
            "no host",
        ),
        (
            [],
            {"OTELKIT_STACK_REDIS_URL": f"redis://:{SECRET}@cache/db1"},
            "$OTELKIT_STACK_REDIS_URL",
            "redis://:***@cache/db1",
            "the database must be a number",
        ),
        (
            [f"--redis-url=http://:{SECRET}@cache:6379/0"],
            {"OTELKIT_STACK_REDIS_URL": "redis://ignored:6379/0"},
            "--redis-url",  # the option wins over the variable
            "http://:***@cache:6379/0",
            "the scheme must be redis or rediss",
        ),
    ],
)
def test_a_bad_url_is_refused_naming_the_option_with_the_password_masked(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    named: str,
    shown: str,
    reason: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, err = up(tmp_path, *args, capsys=capsys)
    assert code == 1
    assert err.startswith(f"otelkit stack up: {named} '{shown}': {reason}"), err
    assert SECRET not in err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written or started


def test_a_server_that_does_not_answer_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{refused_port()}/0"
    code, err = up(tmp_path, f"--redis-url={url}", capsys=capsys)
    assert code == 1
    assert f"--redis-url {redact(url)}: " in err and "refused" in err, err
    assert SECRET not in err
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_does_not_exist_is_refused_with_postgres_own_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    url = with_password(libpq(postgres_url).rsplit("/", 1)[0] + "/no_such_database", SECRET)
    code, err = up(tmp_path, f"--postgres-url={url}", capsys=capsys)
    assert code == 1
    assert f"--postgres-url {redact(url)}: " in err and 'database "no_such_database" does not exist' in err, err
    assert SECRET not in err


def test_the_stack_built_on_external_servers_has_no_own_ones_and_gives_their_urls_to_its_users(
    tmp_path: Path,
) -> None:
    postgres = ExternalPostgres.parse(f"postgresql+psycopg://app:{SECRET}@db.internal:6543/shop?sslmode=require", "x")
    redis = ExternalRedis.parse(f"redis://cacheuser:{SECRET}@cache.internal:6380/2", "y")
    built = {c.name: c for c in components.build(StateDir(tmp_path), PORTS, Options(postgres=postgres, redis=redis))}
    assert "postgres" not in built and "redis" not in built
    demo = built["demo"].env
    assert demo["DEMO_DATABASE_URL"] == f"postgresql+asyncpg://app:{SECRET}@db.internal:6543/shop?ssl=require"
    assert demo["DEMO_REDIS_URL"] == f"redis://cacheuser:{SECRET}@cache.internal:6380/2"
    exporter = built["postgres_exporter"].env["DATA_SOURCE_NAME"]
    assert exporter == f"postgresql://app:{SECRET}@db.internal:6543/shop?sslmode=require"
    assert "-redis.addr=redis://cache.internal:6380/2" in built["redis_exporter"].argv
    assert built["redis_exporter"].env == {"REDIS_PASSWORD": SECRET, "REDIS_USER": "cacheuser"}
    # Passwords go through the environment only: command lines show in ps and in the logs.
    assert not [c.name for c in built.values() if any(SECRET in arg for arg in c.argv)]


def test_status_shows_external_servers_probed_and_masked(tmp_path: Path, postgres_url: str) -> None:
    state = StateDir(tmp_path)
    postgres = ExternalPostgres.parse(with_password(postgres_url, SECRET), "--postgres-url")  # trust auth
    dead = ExternalRedis.parse(f"redis://127.0.0.1:{refused_port()}/0", "--redis-url")
    Options(postgres=postgres, redis=dead).save(state)
    assert (tmp_path / "options.json").stat().st_mode & 0o077 == 0  # it holds the password
    state.write_json(PORTS, "ports.json")
    rows = {row.name: row for row in stack.status(state)}
    assert rows["postgres"].external and rows["postgres"].healthy and rows["postgres"].pid is None
    assert rows["postgres"].url == redact(postgres.url) and SECRET not in rows["postgres"].url
    assert rows["redis"].external and not rows["redis"].healthy  # nothing answers there
    assert not rows["demo"].external and not rows["demo"].healthy  # nothing was started


def test_the_stacks_own_server_is_not_taken_for_an_external_one(tmp_path: Path) -> None:
    """``up`` stops its own PostgreSQL when given one: given the URL of that very server, it refuses."""
    state = StateDir(tmp_path)
    own = supervisor.start(
        state,
        "postgres",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={},
        cwd=tmp_path,
        fingerprint_value="",
    )
    try:
        state.write_json({"postgres": 25432}, "ports.json")
        given = ExternalPostgres.parse("postgresql://otelkit@127.0.0.1:25432/postgres", "--postgres-url")
        with pytest.raises(stack.StackError, match="is the stack's own postgres"):
            stack.up(state, Options(postgres=given), say=lambda line: None)
        assert supervisor.running(state, "postgres") == own
    finally:
        supervisor.stop(state, "postgres")


@pytest.mark.parametrize(
    ("url", "sslmode"),
    [
        ("postgresql://app@db.internal/shop", "require"),  # a remote login never travels in clear by default
        ("postgresql://app@127.0.0.1:5432/shop", "disable"),  # loopback: no TLS to ask for
        ("postgresql+asyncpg://app@db.internal/shop?ssl=verify-full", "verify-full"),  # asyncpg's spelling
        ("postgresql://app@db.internal/shop?sslmode=disable", "disable"),  # what the URL says wins
    ],
)
def test_the_exporter_and_probe_use_tls_unless_told_or_on_loopback(url: str, sslmode: str) -> None:
    libpq = ExternalPostgres.parse(url, "--postgres-url").libpq_url()
    assert libpq.startswith("postgresql://") and libpq.endswith(f"sslmode={sslmode}") and "ssl=" not in libpq
