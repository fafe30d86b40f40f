"""The stack's components, in start order: how each is run, where it answers, how it is probed.

Every server binds to 127.0.0.1 on the port ``ports`` gives it; data and logs go to the state dir.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from otelkit.devstack import binaries, configs
from otelkit.devstack.external import ExternalPostgres, ExternalRedis, ExternalServer
from otelkit.devstack.health import http_ok, redis_pong, tcp_open
from otelkit.devstack.state import REPO, StateDir

SYNTHETIC_CHECKS = REPO / "synthetic" / "checks.yaml"
OPTIONS_FILE = "options.json"


@dataclass(frozen=True)
class Options:
    """What ``up`` was asked for. Saved in the state dir (mode 0600: an external URL may hold a password)
    so that ``status`` describes the stack that runs, not the defaults."""

    traffic_rate: float = 6.0
    first_incident_after: float = 60.0
    """Seconds until the traffic's first incident (0: errors from the start, for a page within minutes)."""
    scrape_interval: str | None = None
    """Prometheus's scrape and evaluation interval instead of the repo's 15s; the rules stay the repo's."""
    postgres: ExternalPostgres | None = None
    redis: ExternalRedis | None = None

    def external(self) -> dict[str, ExternalServer]:
        """The servers the user runs, by the component name they replace."""
        servers: dict[str, ExternalServer | None] = {"postgres": self.postgres, "redis": self.redis}
        return {name: server for name, server in servers.items() if server is not None}

    def save(self, state: StateDir) -> None:
        value = {
            "traffic_rate": self.traffic_rate,
            "first_incident_after": self.first_incident_after,
            "scrape_interval": self.scrape_interval,
            **{name: server.to_json() for name, server in self.external().items()},
        }
        path = state.path(OPTIONS_FILE)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            json.dump(value, out, indent=2, sort_keys=True)
        tmp.replace(path)

    @classmethod
    def load(cls, state: StateDir) -> Options:
        value = state.read_json(OPTIONS_FILE) or {}
        postgres, redis = value.get("postgres"), value.get("redis")
        return cls(
            traffic_rate=value.get("traffic_rate", cls.traffic_rate),
            first_incident_after=value.get("first_incident_after", cls.first_incident_after),
            scrape_interval=value.get("scrape_interval"),
            postgres=ExternalPostgres.parse(postgres["url"], postgres["source"]) if postgres else None,
            redis=ExternalRedis.parse(redis["url"], redis["source"]) if redis else None,
        )


@dataclass
class Component:
    name: str
    argv: list[str]
    url: str
    healthy: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    config_files: list[Path] = field(default_factory=list)
    prepare: Callable[[], None] | None = None
    stop_signal: int = signal.SIGTERM
    ready_timeout: float = 60.0


def _run_as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user Debian creates."""
    return [binaries.find("runuser"), "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _init_postgres(data: Path) -> None:
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    command = [*_run_as_postgres_user(), binaries.postgres("initdb"), "-D", str(data), "-U", "otelkit"]
    result = subprocess.run([*command, "--auth=trust", "-E", "UTF8"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        hint = " (the postgres user must be able to reach the state directory)" if os.geteuid() == 0 else ""
        raise RuntimeError(f"initdb failed{hint}:\n{result.stderr[-2000:]}")


def _log_mentions(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(errors="replace")


def _own_postgres_url(ports: dict[str, int]) -> str:
    return f"postgresql://otelkit@127.0.0.1:{ports['postgres']}/postgres"


def _own_redis_url(ports: dict[str, int]) -> str:
    return f"redis://127.0.0.1:{ports['redis']}/0"


def _own_servers(state: StateDir, ports: dict[str, int], options: Options) -> list[Component]:
    """PostgreSQL and Redis as the stack runs them, unless the user gave their own."""
    servers: list[Component] = []
    if options.postgres is None:
        postgres_data = state.root / "postgres" / "data"
        servers.append(
            Component(
                "postgres",
                [
                    *_run_as_postgres_user(),
                    binaries.postgres("postgres"),
                    "-D",
                    str(postgres_data),
                    "-p",
                    str(ports["postgres"]),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                ],
                _own_postgres_url(ports),
                partial(tcp_open, ports["postgres"]),
                prepare=partial(_init_postgres, postgres_data),
                stop_signal=signal.SIGINT,  # "fast" shutdown: the default waits for every client to leave
            )
        )
    if options.redis is None:
        servers.append(
            Component(
                "redis",
                [
                    binaries.find("redis-server"),
                    "--port",
                    str(ports["redis"]),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(state.directory("redis")),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                _own_redis_url(ports),
                partial(redis_pong, ports["redis"]),
            )
        )
    return servers


def build(state: StateDir, ports: dict[str, int], options: Options) -> list[Component]:
    """Render the configs and describe every component for ``ports``; an external server has none."""
    prometheus_yml = configs.prometheus_config(state, ports, scrape_interval=options.scrape_interval)
    alertmanager_yml = configs.alertmanager_config(state, ports)
    nginx_conf = configs.nginx_config(state, ports)
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    if options.postgres is not None:
        postgres_dsn, database_url = options.postgres.libpq_url(), options.postgres.sqlalchemy_url()
    else:
        postgres_dsn = _own_postgres_url(ports) + "?sslmode=disable"
        database_url = _own_postgres_url(ports).replace("postgresql://", "postgresql+asyncpg://")
    redis_url = options.redis.url if options.redis is not None else _own_redis_url(ports)
    redis_address = options.redis.address() if options.redis is not None else redis_url
    redis_env = options.redis.exporter_env() if options.redis is not None else {}
    python = binaries.python()
    return [
        *_own_servers(state, ports, options),
        Component(
            "sinks",
            [
                python,
                "-m",
                "otelkit.devstack.sinks",
                f"--state-dir={state.root}",
                f"--smtp-port={ports['smtp_sink']}",
                f"--http-port={ports['pagerduty_sink']}",
            ],
            f"{state.root / 'sinks'} (SMTP :{ports['smtp_sink']}, PagerDuty {url['pagerduty_sink']}/v2/enqueue)",
            lambda: http_ok(url["pagerduty_sink"]) and tcp_open(ports["smtp_sink"]),
        ),
        Component(
            "collector",
            [binaries.collector(), f"--config={REPO / 'collector' / 'config.yaml'}"],
            f"OTLP grpc :{ports['otlp_grpc']} http :{ports['otlp_http']}, metrics {url['collector_exporter']}/metrics",
            partial(http_ok, url["collector_health"] + "/"),
            env={
                "OTELKIT_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
                "OTELKIT_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
                "OTELKIT_PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{ports['collector_exporter']}",
                "OTELKIT_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{ports['collector_health']}",
                "OTELKIT_COLLECTOR_TELEMETRY_HOST": "127.0.0.1",
                "OTELKIT_COLLECTOR_TELEMETRY_PORT": str(ports["collector_telemetry"]),
            },
            config_files=[REPO / "collector" / "config.yaml"],
        ),
        Component(
            "alertmanager",
            [
                binaries.find("prometheus-alertmanager"),
                f"--config.file={alertmanager_yml}",
                f"--storage.path={state.directory('alertmanager', 'data')}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                f"--web.external-url={url['alertmanager']}",
                "--cluster.listen-address=",
                "--data.retention=168h",  # the spec: Alertmanager keeps 7 days
            ],
            url["alertmanager"],
            partial(http_ok, url["alertmanager"] + "/-/ready"),
            config_files=[alertmanager_yml, *sorted(configs.TEMPLATES_DIR.glob("*.tmpl"))],
        ),
        Component(
            "prometheus",
            [
                binaries.find("prometheus"),
                f"--config.file={prometheus_yml}",
                f"--storage.tsdb.path={state.directory('prometheus', 'data')}",
                "--storage.tsdb.retention.time=15d",  # the spec's retention
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                f"--web.external-url={url['prometheus']}",
                "--web.enable-admin-api",  # TSDB snapshots for the daily backup (otelkit stack snapshot)
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ],
            url["prometheus"],
            partial(http_ok, url["prometheus"] + "/-/ready"),
            config_files=[prometheus_yml, *sorted(configs.RULES_DIR.glob("*.yml"))],
            ready_timeout=120.0,  # replays its write-ahead log after a restart
        ),
        Component(
            "node_exporter",
            [
                binaries.find("prometheus-node-exporter"),
                f"--web.listen-address=127.0.0.1:{ports['node_exporter']}",
                f"--collector.textfile.directory={state.directory('node_exporter')}",
            ],
            url["node_exporter"] + "/metrics",
            partial(http_ok, url["node_exporter"] + "/metrics"),
        ),
        Component(
            "postgres_exporter",
            [
                binaries.find("prometheus-postgres-exporter"),
                f"--web.listen-address=127.0.0.1:{ports['postgres_exporter']}",
            ],
            url["postgres_exporter"] + "/metrics",
            partial(http_ok, url["postgres_exporter"] + "/metrics"),
            env={"DATA_SOURCE_NAME": postgres_dsn},
        ),
        Component(
            "redis_exporter",
            [
                binaries.find("prometheus-redis-exporter"),
                f"-redis.addr={redis_address}",
                f"-web.listen-address=127.0.0.1:{ports['redis_exporter']}",
            ],
            url["redis_exporter"] + "/metrics",
            partial(http_ok, url["redis_exporter"] + "/metrics"),
            env=redis_env,  # credentials, if any: never on a command line
        ),
        Component(
            "demo",
            [python, "-m", "uvicorn", "demo.app:app", "--host=127.0.0.1", f"--port={ports['demo']}", "--no-access-log"],
            url["demo"],
            # /health (liveness): PostgreSQL, Redis and the collector are components with readiness probes
            # of their own; /health/detailed is what synthetic/checks.yaml's api-health-detailed watches.
            partial(http_ok, url["demo"] + "/health"),
            env={
                "DEMO_DATABASE_URL": database_url,
                "DEMO_REDIS_URL": redis_url,
                "OTELKIT_SERVICE__ENVIRONMENT": "local",
                "OTELKIT_OTLP__ENDPOINT": f"http://127.0.0.1:{ports['otlp_grpc']}",
                "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "5",
                "OTELKIT_SENTRY__ENABLED": "false",
                # /sla/* read the recording rules: the synthetic component runs in a process of its own,
                # which the demo's in-process windows would never see.
                "OTELKIT_SLA__PROMETHEUS_URL": url["prometheus"],
            },
            config_files=sorted((REPO / "demo").glob("*.py")),
        ),
        Component(
            "nginx",
            [binaries.find("nginx"), "-c", str(nginx_conf), "-p", str(state.directory("nginx"))],
            url["nginx"] + " (the demo service)",
            partial(http_ok, url["nginx"] + "/health"),
            config_files=[nginx_conf, configs.NGINX_SITE],
            stop_signal=signal.SIGQUIT,  # graceful: finish the requests in flight
        ),
        Component(
            "nginx_exporter",
            [
                binaries.find("prometheus-nginx-exporter"),
                f"-nginx.scrape-uri={url['nginx']}/stub_status",
                f"-web.listen-address=127.0.0.1:{ports['nginx_exporter']}",
            ],
            url["nginx_exporter"] + "/metrics",
            partial(http_ok, url["nginx_exporter"] + "/metrics"),
        ),
        Component(
            "synthetic",
            [
                str(Path(sys.prefix) / "bin" / "otelkit"),
                "synthetic",
                "run",
                f"--config={SYNTHETIC_CHECKS}",
                f"--base-url={url['nginx']}",
            ],
            f"{SYNTHETIC_CHECKS.relative_to(REPO)} against {url['nginx']}",
            partial(_log_mentions, state.log("synthetic"), "api-health "),  # it prints each result
            env={
                "SYNTHETIC_BASE_URL": url["nginx"],
                "OTELKIT_OTLP__ENDPOINT": f"http://127.0.0.1:{ports['otlp_grpc']}",
                "OTELKIT_SENTRY__ENABLED": "false",
            },
            config_files=[SYNTHETIC_CHECKS],
        ),
        Component(
            "traffic",
            [
                python,
                "-m",
                "demo.traffic",
                f"--url={url['nginx']}",
                f"--rate={options.traffic_rate}",
                f"--first-incident-after={options.first_incident_after:g}",
            ],
            f"load on {url['nginx']}",
            partial(_log_mentions, state.log("traffic"), "traffic: "),  # it says so once its loop runs
            config_files=[REPO / "demo" / "traffic.py"],
        ),
    ]
