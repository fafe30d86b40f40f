"""Every collector config file is accepted by the built distribution's own validator."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.collector import COLLECTOR_DIR, collector_binary

SENTRY_KEY = "0123456789abcdef0123456789abcdef"
# Every overlay of config.yaml with the environment it needs to start; a new overlay must be added here.
OVERLAYS: dict[str, dict[str, str]] = {
    "config.traces-otlp.yaml": {"OTELKIT_TRACES_OTLP_ENDPOINT": "127.0.0.1:14317"},
    "config.traces-otlphttp.yaml": {
        "OTELKIT_TRACES_OTLPHTTP_ENDPOINT": "https://o1.ingest.us.sentry.io/api/2/integration/otlp/v1/traces",
        "OTELKIT_TRACES_OTLPHTTP_HEADERS": f'{{x-sentry-auth: "sentry sentry_key={SENTRY_KEY}"}}',
    },
    "config.remote-write.yaml": {"OTELKIT_REMOTE_WRITE_ENDPOINT": "http://127.0.0.1:9090/api/v1/write"},
}
# ocb module name -> the component type configs name it by (v0.161 names).
COMPONENT_TYPE = {
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
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")


@pytest.fixture(scope="module")
def otelcol() -> Path:
    return collector_binary()


def run(
    otelcol: Path, command: str, *configs: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``otelcol <command> --config ...`` with ``env`` on top of an environment without OTELKIT_* variables."""
    argv = [str(otelcol), command] + [f"--config={COLLECTOR_DIR / name}" for name in configs]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTELKIT_")}
    return subprocess.run(argv, capture_output=True, text=True, env={**clean, **(env or {})}, timeout=60)


def test_every_config_file_is_the_gateway_or_a_known_overlay() -> None:
    assert {path.name for path in COLLECTOR_DIR.glob("config*.yaml")} == {"config.yaml", *OVERLAYS}


def test_gateway_config_is_valid(otelcol: Path) -> None:
    result = run(otelcol, "validate", "config.yaml")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_overlay_is_valid_with_its_settings(otelcol: Path, overlay: str) -> None:
    result = run(otelcol, "validate", "config.yaml", overlay, env=OVERLAYS[overlay])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_overlay_refuses_to_start_without_its_endpoint(otelcol: Path, overlay: str) -> None:
    env = {name: value for name, value in OVERLAYS[overlay].items() if not name.endswith("ENDPOINT")}
    result = run(otelcol, "validate", "config.yaml", overlay, env=env)
    assert result.returncode != 0
    assert "endpoint" in result.stderr


def test_otlphttp_overlay_sends_the_headers_it_is_given_and_keeps_them_secret(otelcol: Path) -> None:
    result = run(
        otelcol,
        "print-config",
        "config.yaml",
        "config.traces-otlphttp.yaml",
        env=OVERLAYS["config.traces-otlphttp.yaml"],
    )
    assert result.returncode == 0, result.stderr
    exporter = yaml.safe_load(result.stdout)["exporters"]["otlp_http/traces"]
    assert exporter["headers"] == [{"name": "x-sentry-auth", "value": "[REDACTED]"}]
    assert exporter["traces_endpoint"].endswith("/integration/otlp/v1/traces")
    assert SENTRY_KEY not in result.stdout + result.stderr


def test_otlphttp_overlay_rejects_headers_that_are_not_a_map(otelcol: Path) -> None:
    env = {**OVERLAYS["config.traces-otlphttp.yaml"], "OTELKIT_TRACES_OTLPHTTP_HEADERS": "x-sentry-auth=abc"}
    result = run(otelcol, "validate", "config.yaml", "config.traces-otlphttp.yaml", env=env)
    assert result.returncode != 0
    assert "headers" in result.stderr


@pytest.mark.parametrize("overlay", [None, *sorted(OVERLAYS)])
def test_memory_limiter_is_first_in_every_pipeline_after_the_overlays_merge(otelcol: Path, overlay: str | None) -> None:
    configs = ["config.yaml"] + ([overlay] if overlay else [])
    result = run(otelcol, "print-config", *configs, env=OVERLAYS.get(overlay or "", {}))
    assert result.returncode == 0, result.stderr
    pipelines = yaml.safe_load(result.stdout)["service"]["pipelines"]
    assert set(pipelines) == {"metrics", "traces", "logs"}
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", (overlay, name, pipeline["processors"])
        assert "batch" in pipeline["processors"], (overlay, name)


def test_every_manifest_component_is_used_by_a_config() -> None:
    """The distribution carries what the configs use, nothing else (checked by component type)."""
    manifest = yaml.safe_load((COLLECTOR_DIR / "manifest.yaml").read_text())
    configs = [yaml.safe_load(path.read_text()) for path in COLLECTOR_DIR.glob("config*.yaml")]
    used = {key.split("/")[0] for config in configs for section in KINDS for key in (config.get(section) or {})}
    built = {
        COMPONENT_TYPE[entry["gomod"].split()[0].rsplit("/", 1)[-1]]
        for kind in KINDS
        for entry in manifest.get(kind, [])
    }
    assert built == used


def test_every_manifest_module_is_pinned_to_the_one_release() -> None:
    """Collector modules must not mix releases: components, providers, telemetry and the builder agree."""
    manifest = yaml.safe_load((COLLECTOR_DIR / "manifest.yaml").read_text())
    release = manifest["dist"]["version"].removesuffix("-otelkit")
    build_script = (COLLECTOR_DIR / "build.sh").read_text()
    assert f"\nOCB_VERSION=v{release}\n" in build_script
    entries = [entry["gomod"] for kind in KINDS for entry in manifest.get(kind, [])] + [manifest["telemetry"]["gomod"]]
    assert entries
    for gomod in entries:
        version = gomod.split()[1]
        assert version == f"v{release}", gomod
    # The confmap providers are stable (v1.x) modules: the version the release's own receiver requires.
    receiver = next(e["gomod"] for e in manifest["receivers"] if "/otlpreceiver " in e["gomod"]).replace(" ", "@")
    download = subprocess.run(
        ["go", "mod", "download", "-json", receiver],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=COLLECTOR_DIR,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    assert download.returncode == 0, download.stderr
    go_mod = Path(json.loads(download.stdout)["GoMod"]).read_text()
    stable = re.search(r"^\s*go\.opentelemetry\.io/collector/confmap (v1\.\S+)$", go_mod, re.MULTILINE)
    assert stable is not None, go_mod
    providers = [entry["gomod"] for entry in manifest["providers"]]
    assert providers
    for gomod in providers:
        assert gomod.split()[1] == stable.group(1), gomod


def test_the_distribution_contains_exactly_the_manifest_components(otelcol: Path) -> None:
    result = subprocess.run([str(otelcol), "components"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    built = yaml.safe_load(result.stdout)
    manifest = yaml.safe_load((COLLECTOR_DIR / "manifest.yaml").read_text())
    for kind in KINDS:
        wanted = {entry["gomod"] for entry in manifest.get(kind, [])}
        assert {entry["module"] for entry in built.get(kind) or []} == wanted, kind
    names = {entry["name"] for kind in ["receivers", "processors", "exporters", "extensions"] for entry in built[kind]}
    assert set(COMPONENT_TYPE.values()) <= names


def test_otlphttp_overlay_needs_no_headers(otelcol: Path) -> None:
    """A Tempo or Jaeger behind no auth: the endpoint alone, the headers left at their default."""
    env = {name: value for name, value in OVERLAYS["config.traces-otlphttp.yaml"].items() if "HEADERS" not in name}
    result = run(otelcol, "print-config", "config.yaml", "config.traces-otlphttp.yaml", env=env)
    assert result.returncode == 0, result.stderr
    assert not yaml.safe_load(result.stdout)["exporters"]["otlp_http/traces"].get("headers")
