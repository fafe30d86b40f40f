"""stack/compose.yaml, checked without a Docker engine: the Compose specification's JSON schema, the
spec's services and secrets, pinned images, and every file it mounts or builds from exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.devstack.compose_schema import compose_schema

STACK = Path(__file__).resolve().parents[2] / "stack"
COMPOSE = STACK / "compose.yaml"
SPEC_SERVICES = {
    "prometheus",
    "grafana",
    "alertmanager",
    "postgres_exporter",
    "redis_exporter",
    "node_exporter",
    "nginx_exporter",
    "sentry-relay",
    "otel-collector",
    "backend",
}
SPEC_SECRETS = {"sentry_dsn", "pagerduty_service_key", "grafana_password", "alertmanager_config"}
OPERATOR_SECRETS = STACK / "secrets"  # values the operator writes; never in the repo


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_against_the_compose_specification_schema(compose: dict[str, Any]) -> None:
    try:
        import jsonschema
    except ImportError as error:  # a missing validator fails, it does not skip
        raise AssertionError("jsonschema is not installed: it belongs in the dev extra (pyproject.toml)") from error
    schema = compose_schema()
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The schema is not toothless: a misspelt key is an error.
    broken = {**compose, "services": {**compose["services"], "redis": {**compose["services"]["redis"], "imag": "x"}}}
    assert list(validator.iter_errors(broken))


def test_the_spec_services_run_from_pinned_images_with_health_checks_or_a_reason(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= SPEC_SERVICES
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}: {image} is not pinned"
    # Scratch images have no shell for a health check; Prometheus's `up` watches those (see compose.yaml).
    without = {name for name, service in services.items() if "healthcheck" not in service}
    assert without == {"otel-collector", "redis_exporter", "nginx_exporter"}


def test_every_secret_is_declared_and_the_spec_secrets_are_compose_secrets(compose: dict[str, Any]) -> None:
    declared = set(compose["secrets"])
    assert declared >= SPEC_SECRETS
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in declared, f"{name} uses the undeclared secret {source}"
    for name, secret in compose["secrets"].items():
        path = (STACK / secret["file"]).resolve()
        assert path.is_relative_to(OPERATOR_SECRETS) or path.is_file(), f"secret {name}: {path} missing"


def test_every_mounted_file_and_build_context_exists(compose: dict[str, Any]) -> None:
    named_volumes = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source in named_volumes or source == "/":
                continue
            assert source.startswith("."), f"{name}: {source} is neither a named volume nor a repo path"
            assert (STACK / source).resolve().exists(), f"{name} mounts {source}, which does not exist"
        if "build" in service:
            context = (STACK / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file()
    # The named volumes each service writes to are declared, so data survives `down`.
    assert {"prometheus-data", "alertmanager-data", "grafana-data"} <= named_volumes


def test_native_and_compose_stacks_run_the_same_config_files(compose: dict[str, Any]) -> None:
    from otelkit.devstack import configs

    mounted = {
        (STACK / volume.split(":", 1)[0]).resolve()
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    }
    for native in (configs.PROMETHEUS_YML, configs.RULES_DIR, configs.TEMPLATES_DIR, configs.NGINX_SITE):
        assert native.resolve() in mounted, native
    assert (STACK / compose["secrets"]["alertmanager_config"]["file"]).resolve() == configs.ALERTMANAGER_YML.resolve()


def test_the_synthetic_runner_feeds_the_backends_sla_endpoints_through_prometheus(compose: dict[str, Any]) -> None:
    """/sla/uptime in Prometheus mode shows the checks of a runner in another container; in process it could not."""
    from otelkit.cli.synthetic import DEFAULT_SERVICE_NAME
    from otelkit.settings import SlaSettings
    from otelkit.synthetic import load_checks
    from otelkit.synthetic.runner import SyntheticRunner  # noqa: F401 - the image's extra must provide httpx

    services = compose["services"]
    assert services["backend"]["environment"]["OTELKIT_SLA__PROMETHEUS_URL"] == "http://prometheus:9090"
    synthetic = services["synthetic"]
    assert synthetic["build"] == services["backend"]["build"] and synthetic["image"] == services["backend"]["image"]
    command = synthetic["command"]
    assert command[:3] == ["otelkit", "synthetic", "run"]
    assert "OTELKIT_SERVICE__NAME" not in synthetic["environment"]  # job = the runner's default service name ...
    assert SlaSettings().synthetic_job == DEFAULT_SERVICE_NAME  # ... which the backend's /sla/uptime reads
    assert (
        synthetic["environment"]["OTELKIT_OTLP__ENDPOINT"]
        == services["backend"]["environment"]["OTELKIT_OTLP__ENDPOINT"]
    )
    dockerfile = (STACK / synthetic["build"]["context"] / synthetic["build"]["dockerfile"]).read_text()
    assert "COPY synthetic ./synthetic" in dockerfile and "synthetic]" in dockerfile
    config = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--config="))
    base_url = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--base-url="))
    repo_copy = STACK.parent / config.removeprefix("/app/")
    assert {check.name for check in load_checks(repo_copy, base_url=base_url)} >= {"api-health", "api-docs"}
