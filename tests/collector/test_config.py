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
        wanted = {entry["gomod"] for entry in manifest[kind]}
        assert {entry["module"] for entry in built[kind]} == wanted, kind
    names = {entry["name"] for kind in ["receivers", "processors", "exporters", "extensions"] for entry in built[kind]}
    assert {"otlp", "memory_limiter", "batch", "prometheus", "debug", "health_check"} <= names
