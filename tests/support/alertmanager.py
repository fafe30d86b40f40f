"""Run the repo's Alertmanager config in a real Alertmanager on loopback, and talk to its API."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from otelkit.devstack.configs import local_alertmanager_config

from .ports import free_port
from .processes import Server, require_binary

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "stack" / "alertmanager" / "alertmanager.yml"
TEMPLATES = ROOT / "stack" / "alertmanager" / "templates"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # 32 characters, like a PagerDuty integration key
SMTP_USER = "alertmanager@prodstack.local"
SMTP_PASSWORD = "s3cret-from-a-file"


def repo_config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG_PATH.read_text())


def write_test_copy(
    directory: Path,
    *,
    smtp_smarthost: str,
    pagerduty_url: str,
    heartbeat_url: str,
    config: dict[str, Any] | None = None,
) -> Path:
    """The repo's config, rewritten only for addresses and secret files, written under ``directory``.

    Addresses: the SMTP smarthost (plain SMTP on loopback, so ``smtp_require_tls`` goes off), the
    PagerDuty Events API URL, the heartbeat webhook, and the templates' absolute path. Secret files:
    every ``*_file`` under /etc/alertmanager/secrets/ points at a file written here.
    """
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    # Alertmanager 0.25 uses the SMTP password file verbatim, a trailing newline included (so it must
    # be written with printf, see stack/README.md); it trims the PagerDuty routing key file.
    secrets = {"smtp_password": SMTP_PASSWORD, "pagerduty_routing_key": ROUTING_KEY + "\n"}
    paths = {}
    for name, value in secrets.items():
        paths[name] = secrets_dir / name
        paths[name].write_text(value)
    config = local_alertmanager_config(
        config if config is not None else repo_config(),
        smtp_smarthost=smtp_smarthost,
        pagerduty_url=pagerduty_url,
        heartbeat_url=heartbeat_url,
        secret_files=paths,
    )
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Alertmanager:
    """A real Alertmanager; ``cluster_port`` 0 disables clustering, else it gossips with ``peers``."""

    def __init__(
        self,
        name: str,
        config: Path,
        directory: Path,
        *,
        cluster_port: int = 0,
        peers: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        storage = directory / f"{name}-data"
        storage.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--log.level=debug",
        ]
        if cluster_port:
            argv += [f"--cluster.listen-address=127.0.0.1:{cluster_port}"]
            argv += [f"--cluster.peer={peer}" for peer in peers]
        else:
            argv.append("--cluster.listen-address=")
        self.server = Server(name, argv, directory, env=env)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.server.wait_http(f"{self.url}/-/ready", timeout)

    def stop(self) -> None:
        self.server.stop()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.status != 200:
                raise RuntimeError(f"POST /api/v2/alerts answered {response.status}")

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return json.loads(response.read())

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/api/v2/status", timeout=5) as response:
            return json.loads(response.read())


def alert(labels: dict[str, str], *, minutes: int = 60, **annotations: str) -> dict[str, Any]:
    """An alert as Prometheus posts it: active now, ending in ``minutes`` unless re-sent."""
    now = dt.datetime.now(dt.UTC)
    return {
        "labels": labels,
        "annotations": {"summary": "test", "description": "test", **annotations},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(minutes=minutes)).isoformat(),
    }
