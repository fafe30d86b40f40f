"""The local stack's configs are the repo's, rewritten only in addresses and paths, and still valid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from otelkit.cli import main
from otelkit.devstack import StateDir, configs
from otelkit.devstack.ports import DEFAULT_PORTS
from tests.support.processes import require_binary

PORTS = {name: 20000 + index for index, name in enumerate(DEFAULT_PORTS)}


def test_prometheus_config_moves_targets_adds_the_exporters_and_keeps_the_rest(tmp_path: Path) -> None:
    rendered = yaml.safe_load(configs.prometheus_config(StateDir(tmp_path), PORTS).read_text())
    repo = yaml.safe_load(configs.PROMETHEUS_YML.read_text())
    assert rendered["global"] == repo["global"]  # intervals and labels untouched
    assert rendered["rule_files"] == [str(configs.RULES_DIR / "*.yml")]
    alertmanagers = rendered["alerting"]["alertmanagers"]
    assert alertmanagers == [{"static_configs": [{"targets": [f"127.0.0.1:{PORTS['alertmanager']}"]}]}]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in rendered["scrape_configs"]}
    assert targets["otel-services"] == [f"127.0.0.1:{PORTS['collector_exporter']}"]
    assert targets["otel-collector"] == [f"127.0.0.1:{PORTS['collector_telemetry']}"]
    assert targets["prometheus"] == [f"127.0.0.1:{PORTS['prometheus']}"]
    for job, port_name in configs.STACK_JOBS.items():
        assert targets[job] == [f"127.0.0.1:{PORTS[port_name]}"]
    honor = {job["job_name"]: job.get("honor_labels") for job in rendered["scrape_configs"]}
    assert honor["otel-services"] is True  # the service's job label survives the rewrite


def test_rendered_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    path = configs.prometheus_config(StateDir(tmp_path), PORTS)
    result = subprocess.run(
        [require_binary("promtool", "prometheus"), "check", "config", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_interval_changes_only_the_two_intervals_and_stays_valid(tmp_path: Path) -> None:
    """``up --scrape-interval``: alerts sooner with the same rules (their ``for`` is in the rule files)."""
    without_servers = {name: port for name, port in PORTS.items() if name not in ("postgres", "redis")}
    path = configs.prometheus_config(StateDir(tmp_path), without_servers, scrape_interval="5s")
    rendered = yaml.safe_load(path.read_text())
    repo = yaml.safe_load(configs.PROMETHEUS_YML.read_text())
    assert rendered["global"] == {**repo["global"], "scrape_interval": "5s", "evaluation_interval": "5s"}
    assert rendered["rule_files"] == [str(configs.RULES_DIR / "*.yml")]
    # Prometheus needs scrape_timeout <= scrape_interval: its default (10s) must follow the interval down.
    result = subprocess.run(
        [require_binary("promtool", "prometheus"), "check", "config", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_interval_must_be_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["stack", "up", "--scrape-interval=5"])
    assert exited.value.code == 2
    assert "--scrape-interval: '5' is not a duration like 5s or 1m" in capsys.readouterr().err


def test_alertmanager_config_points_receivers_at_the_sinks_and_secrets_at_files(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    path = configs.alertmanager_config(state, PORTS)
    rendered = yaml.safe_load(path.read_text())
    repo = yaml.safe_load(configs.ALERTMANAGER_YML.read_text())
    assert rendered["route"] == repo["route"] and rendered["inhibit_rules"] == repo["inhibit_rules"]
    assert rendered["global"]["smtp_smarthost"] == f"127.0.0.1:{PORTS['smtp_sink']}"
    password_file = Path(rendered["global"]["smtp_auth_password_file"])
    assert password_file.parent == tmp_path / "secrets"
    assert not password_file.read_text().endswith("\n")  # Alertmanager sends the file's bytes verbatim
    pagerduty = next(r for r in rendered["receivers"] if r.get("pagerduty_configs"))["pagerduty_configs"][0]
    assert pagerduty["url"] == f"http://127.0.0.1:{PORTS['pagerduty_sink']}/v2/enqueue"
    assert len(Path(pagerduty["routing_key_file"]).read_text()) == 32
    assert "/etc/alertmanager" not in path.read_text()
    # The secrets are made once: a second render keeps them (Alertmanager and the sink agree).
    assert configs.alertmanager_config(state, PORTS).read_text() == path.read_text()
    result = subprocess.run(
        [require_binary("amtool", "prometheus-alertmanager"), "check-config", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nginx_site_is_the_repo_file_with_the_listen_and_backend_addresses_moved(tmp_path: Path) -> None:
    main = configs.nginx_config(StateDir(tmp_path), PORTS).read_text()
    site = (tmp_path / "config" / "nginx-site.conf").read_text()
    assert f"include {tmp_path / 'config' / 'nginx-site.conf'};" in main
    repo = configs.NGINX_SITE.read_text()
    assert site == repo.replace("server backend:8000;", f"server 127.0.0.1:{PORTS['demo']};").replace(
        "listen 8080;", f"listen 127.0.0.1:{PORTS['nginx']};"
    )
    result = subprocess.run(
        [require_binary("nginx", "nginx"), "-t", "-c", str(tmp_path / "config" / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
