"""Run a real Prometheus on loopback with a config the test writes, and query its API."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from stack.prometheus import generate
from stack.prometheus.rules_config import CONFIG

from .ports import free_port
from .processes import Server, require_binary

ROOT = Path(__file__).resolve().parents[2]
SHORT_FOR = "5s"


def prometheus_argv(config: Path, data: Path, port: int, *extra_args: str) -> list[str]:
    """Debian's prometheus as the stack runs it (the spec's 15-day retention, exemplar storage),
    on loopback; every test harness starts it through this."""
    return [
        require_binary("prometheus", "prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=15d",
        "--enable-feature=exemplar-storage",
        *extra_args,
    ]


class Prometheus:
    def __init__(self, config: Path, directory: Path, name: str = "prometheus", extra_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = prometheus_argv(
            config, directory / (name + "-data"), self.port, f"--web.external-url={self.url}", *extra_args
        )
        self.server = Server(name, argv, directory)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.server.wait_http(f"{self.url}/-/ready", timeout)

    def stop(self) -> None:
        self.server.stop()

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts."""
        return self._get("/api/v1/alerts")["alerts"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", query=expr)["result"]


def write_rules(directory: Path) -> None:
    """The generated rules with every `for` shortened (nothing else changed)."""
    directory.mkdir(parents=True)
    for name, groups in generate.rule_files(CONFIG).items():
        for group in groups:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = SHORT_FOR
        (directory / name).write_text(generate.render(groups))


def write_prometheus_config(directory: Path, app_port: int, alertmanager_urls: list[str]) -> Path:
    """The repo's prometheus.yml with 1s intervals, rules from `directory`/rules, scraping one app as job "checkout"."""
    config = yaml.safe_load((ROOT / "stack" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(directory / "rules" / "*.yml")]
    targets = [url.removeprefix("http://") for url in alertmanager_urls]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": targets}]}]
    config["scrape_configs"] = [{"job_name": "checkout", "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
