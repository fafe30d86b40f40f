"""The repo's config files, rewritten for the local stack only in addresses and paths.

Prometheus: the repo's ``prometheus.yml`` and generated rules, targets moved to the stack's ports, plus
one scrape job per exporter. Alertmanager: the repo's routing and templates, with the SMTP smarthost,
PagerDuty URL and heartbeat webhook pointed at the local sinks and the secret files at the state dir.
nginx: ``stack/nginx/default.conf`` with the listen port and backend address moved, inside a main
config whose pid, log and temp paths are in the state dir.
"""

from __future__ import annotations

import copy
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from otelkit.devstack.ports import DEFAULT_PORTS
from otelkit.devstack.state import REPO, StateDir

PROMETHEUS_YML = REPO / "stack" / "prometheus" / "prometheus.yml"
RULES_DIR = REPO / "stack" / "prometheus" / "rules"
ALERTMANAGER_YML = REPO / "stack" / "alertmanager" / "alertmanager.yml"
TEMPLATES_DIR = REPO / "stack" / "alertmanager" / "templates"
NGINX_SITE = REPO / "stack" / "nginx" / "default.conf"
SECRETS_PREFIX = "/etc/alertmanager/secrets/"

STACK_JOBS = {
    "node": "node_exporter",
    "postgres": "postgres_exporter",
    "redis": "redis_exporter",
    "nginx": "nginx_exporter",
    "alertmanager": "alertmanager",
}
"""Scrape job name -> port name of the servers the stack adds beside the repo's jobs."""


def _address(ports: dict[str, int], name: str) -> str:
    return f"127.0.0.1:{ports[name]}"


def prometheus_config(state: StateDir, ports: dict[str, int], *, scrape_interval: str | None = None) -> Path:
    """``scrape_interval`` replaces the repo's scrape and evaluation interval (15s): with the same rules
    and ``for`` durations, an alert then fires as soon after its condition starts as they allow."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    if scrape_interval is not None:
        config["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [_address(ports, "alertmanager")]}]}]
    # Every target the repo file names at a usual port moves to the port this stack gave that server.
    moved = {f"127.0.0.1:{DEFAULT_PORTS[name]}": _address(ports, name) for name in DEFAULT_PORTS if name in ports}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            static["targets"] = [moved.get(target, target) for target in static["targets"]]
    # The exporters' jobs, unless the repo file has them already (then the loop above moved them).
    present = {job["job_name"] for job in config["scrape_configs"]}
    for job_name, port_name in STACK_JOBS.items():
        if job_name not in present:
            config["scrape_configs"].append(
                {"job_name": job_name, "static_configs": [{"targets": [_address(ports, port_name)]}]}
            )
    path = state.path("config", "prometheus.yml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def rewrite_secret_files(node: Any, files: dict[str, Path]) -> None:
    """Point every ``*_file`` setting under /etc/alertmanager/secrets/ at ``files[its name]``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str) and value.startswith(SECRETS_PREFIX):
                name = value.removeprefix(SECRETS_PREFIX)
                if name not in files:
                    raise KeyError(f"no value for the secret file {value}")
                node[key] = str(files[name])
            else:
                rewrite_secret_files(value, files)
    elif isinstance(node, list):
        for item in node:
            rewrite_secret_files(item, files)


def local_alertmanager_config(
    config: dict[str, Any],
    *,
    smtp_smarthost: str,
    pagerduty_url: str,
    heartbeat_url: str,
    secret_files: dict[str, Path],
) -> dict[str, Any]:
    """``config`` with receivers on loopback sinks (plain SMTP, so no TLS) and secrets from ``secret_files``."""
    config = copy.deepcopy(config)
    rewrite_secret_files(config, secret_files)
    config["global"].update(smtp_smarthost=smtp_smarthost, smtp_require_tls=False, pagerduty_url=pagerduty_url)
    config["templates"] = [str(TEMPLATES_DIR / "*.tmpl")]
    for receiver in config["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = pagerduty_url
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = heartbeat_url
    return config


def local_secrets(state: StateDir) -> dict[str, Path]:
    """Random local values, written once: an SMTP password (no trailing newline) and a routing key."""
    files = {"smtp_password": state.path("secrets", "smtp_password")}
    files["pagerduty_routing_key"] = state.path("secrets", "pagerduty_routing_key")
    for path in files.values():
        if not path.exists():
            path.write_text(secrets.token_hex(16))  # 32 characters, the shape of a PagerDuty integration key
            path.chmod(0o600)
    return files


def alertmanager_config(state: StateDir, ports: dict[str, int]) -> Path:
    sink = _address(ports, "pagerduty_sink")
    config = local_alertmanager_config(
        yaml.safe_load(ALERTMANAGER_YML.read_text()),
        smtp_smarthost=_address(ports, "smtp_sink"),
        pagerduty_url=f"http://{sink}/v2/enqueue",
        heartbeat_url=f"http://{sink}/heartbeat",
        secret_files=local_secrets(state),
    )
    path = state.path("config", "alertmanager.yml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def nginx_config(state: StateDir, ports: dict[str, int]) -> Path:
    site = NGINX_SITE.read_text()
    for old, new in (
        ("server backend:8000;", f"server {_address(ports, 'demo')};"),
        ("listen 8080;", f"listen {_address(ports, 'nginx')};"),
    ):
        if old not in site:
            raise ValueError(f"{NGINX_SITE} no longer contains {old!r}: update otelkit/devstack/configs.py")
        site = site.replace(old, new)
    site_path = state.path("config", "nginx-site.conf")
    site_path.write_text(site)
    run = state.directory("nginx")
    temp = {kind: state.directory("nginx", kind) for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    main = f"""# Generated by otelkit stack up: paths in the state directory, the site from {NGINX_SITE}.
{user}worker_processes 1;
daemon off;
pid {run / "nginx.pid"};
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log {state.log("nginx-access")};
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {site_path};
}}
"""
    path = state.path("config", "nginx.conf")
    path.write_text(main)
    return path
