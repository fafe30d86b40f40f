"""PostgreSQL and Redis the user already runs (``up --postgres-url/--redis-url``), instead of the stack's own.

The stack then neither starts nor stops them: the demo service and the postgres/redis exporters get these
addresses, ``status`` probes them and shows them as external, ``down`` leaves them alone. A value is checked
before anything starts (never a half-started stack), and every message shows it with its password masked.
Passwords reach the processes only through their environment, never a command line (``ps``, the logs).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

POSTGRES_URL_ENV = "OTELKIT_STACK_POSTGRES_URL"
REDIS_URL_ENV = "OTELKIT_STACK_REDIS_URL"
PROBE_TIMEOUT_SECONDS = 3
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class BadURL(ValueError):
    """A ``--postgres-url``/``--redis-url`` value the stack cannot use; the message names the option."""


_SECRET_QUERY = re.compile(r"(?i)((?:^|[?&;])(?:password|passwd|pass|pwd|secret|token)=)[^&;#]*")


def redact(url: str) -> str:
    """``url`` with every password replaced by ``***``: the one in the user part, and ``password=``
    (libpq and redis-py accept one in the query). When the user part cannot be told apart (an
    unencoded ``/``, ``#`` or ``?`` in the password, a malformed URL), all of it before the last ``@``
    is masked: a message may show too little, never a secret."""
    masked = _SECRET_QUERY.sub(r"\1***", url)
    scheme, separator, rest = masked.partition("://")
    if not separator or "@" not in rest:
        return masked
    try:
        parts = urllib.parse.urlsplit(masked)
        password = parts.password
    except ValueError:
        parts, password = None, None
    if parts is None or "@" in rest.split("/", 1)[0].rpartition("@")[2] or "@" not in parts.netloc:
        # The parser did not find the user part where the last "@" is: mask everything up to it.
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    if password is None:
        return masked
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


@dataclass(frozen=True)
class ExternalServer:
    url: str
    """As given (it may hold a password)."""
    source: str
    """The option or environment variable it came from, for messages."""
    host: str
    port: int

    @property
    def redacted(self) -> str:
        return redact(self.url)

    def problem(self) -> str | None:
        """Why the server cannot be used (it does not answer, refuses the login), or None."""
        raise NotImplementedError

    def _port_problem(self) -> str | None:
        """All that can be checked without the server's client library: does the port answer."""
        from otelkit.devstack.health import tcp_open

        return None if tcp_open(self.port, self.host) else f"nothing answers at {self.host}:{self.port}"

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "source": self.source}


def _split(value: str, source: str, schemes: tuple[str, ...], default_port: int, shape: str) -> Any:
    def bad(reason: str) -> BadURL:
        return BadURL(f"{source} {redact(value)!r}: {reason} (expected {shape})")

    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket; the parser's message may quote the password
        raise bad("not a URL") from None
    if "@" in value.partition("://")[2] and "@" not in parts.netloc:
        raise bad("the user part holds a '/', '?' or '#': percent-encode the password (%2F, %3F, %23)")
    try:
        port = parts.port or default_port
    except ValueError:  # a non-numeric or out-of-range port (its text is not repeated: it may be a password)
        raise bad("the port must be a number from 1 to 65535") from None
    scheme = parts.scheme.partition("+")[0]  # postgresql+asyncpg://: SQLAlchemy's driver suffix
    if scheme not in schemes:
        raise bad(f"the scheme must be {' or '.join(schemes)}, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise bad("no host (Unix sockets are not supported: give host and port)")
    return parts, port


@dataclass(frozen=True)
class ExternalPostgres(ExternalServer):
    @classmethod
    def parse(cls, value: str, source: str) -> ExternalPostgres:
        shape = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        parts, port = _split(value, source, ("postgresql", "postgres"), 5432, shape)
        return cls(value, source, parts.hostname, port)

    def _with(self, scheme: str, query: dict[str, str]) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(scheme=scheme, query=urllib.parse.urlencode(query)))

    @property
    def _query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.url).query))

    def sqlalchemy_url(self) -> str:
        """For the demo (SQLAlchemy + asyncpg, which calls libpq's ``sslmode`` ``ssl``)."""
        query = self._query
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        return self._with("postgresql+asyncpg", query)

    def libpq_url(self) -> str:
        """For postgres_exporter and the probe: libpq's form. TLS as the URL says (asyncpg's ``ssl=`` is
        libpq's ``sslmode=``); otherwise off on loopback and required elsewhere (postgres_exporter's
        driver knows no "prefer"), so a login to a remote server never travels in clear."""
        query = self._query
        if "ssl" in query and "sslmode" not in query:
            query["sslmode"] = query.pop("ssl")
        query.setdefault("sslmode", "disable" if self.host in _LOOPBACK else "require")
        return self._with("postgresql", query)

    def problem(self) -> str | None:
        try:
            import psycopg
        except ImportError:  # the [dev] extra is missing
            return self._port_problem()
        try:
            with psycopg.connect(self.libpq_url(), connect_timeout=PROBE_TIMEOUT_SECONDS) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            return _mask(str(error).strip(), self.url)
        return None


@dataclass(frozen=True)
class ExternalRedis(ExternalServer):
    @classmethod
    def parse(cls, value: str, source: str) -> ExternalRedis:
        shape = "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"
        parts, port = _split(value, source, ("redis", "rediss"), 6379, shape)
        database = parts.path.lstrip("/")
        if database and not database.isdigit():
            reason = f"the database must be a number, not {database!r}"
            raise BadURL(f"{source} {redact(value)!r}: {reason} (expected {shape})")
        return cls(value, source, parts.hostname, port)

    def address(self) -> str:
        """The server without credentials, for redis_exporter's command line (``exporter_env`` has them)."""
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))

    def exporter_env(self) -> dict[str, str]:
        parts = urllib.parse.urlsplit(self.url)
        env = {}
        if parts.password:
            env["REDIS_PASSWORD"] = urllib.parse.unquote(parts.password)
        if parts.username:
            env["REDIS_USER"] = urllib.parse.unquote(parts.username)
        return env

    def problem(self) -> str | None:
        try:
            import redis
        except ImportError:  # the [redis] extra is missing
            return self._port_problem()
        client = redis.Redis.from_url(
            self.url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
        )
        try:
            client.ping()
        except redis.RedisError as error:
            return _mask(str(error).strip() or type(error).__name__, self.url)
        finally:
            client.close()
        return None


def _mask(message: str, url: str) -> str:
    """A driver's message with the URL's password masked, in case the driver quoted it."""
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    return message.replace(password, "***") if password else message
