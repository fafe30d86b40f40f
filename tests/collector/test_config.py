"""Every collector config file is accepted by the built distribution's own validator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.collector import COLLECTOR_DIR, collector_binary


@pytest.fixture(scope="module")
def otelcol() -> Path:
    return collector_binary()


def validate(otelcol: Path, *configs: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(otelcol), "validate"] + [f"--config={COLLECTOR_DIR / name}" for name in configs]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_gateway_config_is_valid(otelcol: Path) -> None:
    result = validate(otelcol, "config.yaml")
    assert result.returncode == 0, result.stderr


def test_traces_overlay_is_valid_with_an_endpoint(otelcol: Path) -> None:
    result = validate(
        otelcol, "config.yaml", "config.traces-otlp.yaml", env={"OTELKIT_TRACES_OTLP_ENDPOINT": "127.0.0.1:14317"}
    )
    assert result.returncode == 0, result.stderr


def test_remote_write_overlay_is_valid_with_an_endpoint(otelcol: Path) -> None:
    env = {"OTELKIT_REMOTE_WRITE_ENDPOINT": "http://127.0.0.1:9090/api/v1/write"}
    result = validate(otelcol, "config.yaml", "config.remote-write.yaml", env=env)
    assert result.returncode == 0, result.stderr


def test_every_manifest_component_is_used_by_a_config() -> None:
    """The distribution carries what the configs use, nothing else (checked by component type)."""
    manifest = yaml.safe_load((COLLECTOR_DIR / "manifest.yaml").read_text())
    configs = [yaml.safe_load(path.read_text()) for path in COLLECTOR_DIR.glob("config*.yaml")]
    used = {
        key.split("/")[0]
        for config in configs
        for section in ("receivers", "processors", "exporters", "connectors", "extensions")
        for key in (config.get(section) or {})
    }
    type_of = {
        "otlpreceiver": "otlp",
        "memorylimiterprocessor": "memory_limiter",
        "batchprocessor": "batch",
        "prometheusexporter": "prometheus",
        "prometheusremotewriteexporter": "prometheus_remote_write",
        "otlpexporter": "otlp_grpc",
        "otlphttpexporter": "otlp_http",
        "debugexporter": "debug",
        "healthcheckextension": "health_check",
    }
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        for entry in manifest.get(kind, []):
            module = entry["gomod"].split()[0].rsplit("/", 1)[-1]
            if module == "otlphttpexporter":
                continue  # shipped for OTLP/HTTP trace backends (the "OTLP/OTLP-HTTP exporters")
            assert type_of[module] in used, f"{module} is built in but no config uses it"


def test_traces_overlay_refuses_to_start_without_an_endpoint(otelcol: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTELKIT_TRACES_OTLP_ENDPOINT"}
    result = subprocess.run(
        [
            str(otelcol),
            "validate",
            f"--config={COLLECTOR_DIR / 'config.yaml'}",
            f"--config={COLLECTOR_DIR / 'config.traces-otlp.yaml'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert "endpoint" in result.stderr


def test_the_distribution_contains_exactly_the_manifest_components(otelcol: Path) -> None:
    result = subprocess.run([str(otelcol), "components"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    built = yaml.safe_load(result.stdout)
    manifest = yaml.safe_load((COLLECTOR_DIR / "manifest.yaml").read_text())
    for kind in ["receivers", "processors", "exporters", "connectors", "extensions"]:
        wanted = {entry["gomod"] for entry in manifest.get(kind, [])}
        assert {entry["module"] for entry in built.get(kind) or []} == wanted, kind
    names = {entry["name"] for kind in ["receivers", "processors", "exporters", "extensions"] for entry in built[kind]}
    assert {"otlp", "memory_limiter", "batch", "prometheus", "debug", "health_check"} <= names
