"""grafana/provisioning: every datasource a dashboard names exists there, exemplars link to traces, and the
dashboards provider loads the committed JSON. (No Grafana server can be installed here: see grafana/README.md.)"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import yaml

from grafana.dashboards_src.config import (
    ALERTMANAGER_UID,
    EXEMPLAR_TRACE_ID_LABEL,
    EXPORTER_JOBS,
    PROMETHEUS_UID,
    TRACE_LINK_ENV,
)
from otelkit.devstack.ports import DEFAULT_PORTS
from tests.grafana.dashboards import PROVISIONING_DIR, REPO, load_dashboards, panels, variables

DASHBOARDS = load_dashboards()


def _datasources() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((PROVISIONING_DIR / "datasources" / "otelkit.yaml").read_text())
    assert document["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in document["datasources"]}
    assert len(by_uid) == len(document["datasources"]), "duplicate datasource uid"
    return by_uid


def _uids(node: Any) -> list[str]:
    """Values of every key ending in "Uid", at any depth."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k.endswith("Uid")] + [u for v in node.values() for u in _uids(v)]
    if isinstance(node, list):
        return [u for item in node for u in _uids(item)]
    return []


def _resolve(reference: dict[str, Any], dashboard: dict[str, Any], provisioned: dict[str, dict[str, Any]]) -> str:
    """The provisioned uid a panel's datasource reference ends up at (through the datasource variable)."""
    uid = reference["uid"]
    match = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", uid)
    if match:
        variable = variables(dashboard)[match.group(1) or match.group(2)]
        assert variable["type"] == "datasource" and variable["query"] == reference["type"], variable
        uid = variable["current"]["value"]
    assert uid in provisioned, f"{dashboard['title']}: datasource {uid} is not provisioned"
    assert provisioned[uid]["type"] == reference["type"], f"{uid} is a {provisioned[uid]['type']}"
    return uid


def test_every_panel_target_and_variable_datasource_is_provisioned() -> None:
    provisioned = _datasources()
    resolved = set()
    count = 0
    for dashboard in DASHBOARDS.values():
        references = [v["datasource"] for v in variables(dashboard).values() if "datasource" in v]
        for _, panel in panels(dashboard):
            references.append(panel["datasource"])
            references.extend(target["datasource"] for target in panel["targets"])
        for reference in references:
            resolved.add(_resolve(reference, dashboard, provisioned))
            count += 1
    assert resolved == {PROMETHEUS_UID}
    assert count > 100


def test_prometheus_links_to_alertmanager() -> None:
    provisioned = _datasources()
    prometheus = provisioned[PROMETHEUS_UID]
    assert prometheus["type"] == "prometheus" and prometheus["isDefault"] is True
    assert prometheus["jsonData"]["alertmanagerUid"] == ALERTMANAGER_UID
    assert provisioned[ALERTMANAGER_UID]["type"] == "alertmanager"
    assert provisioned[ALERTMANAGER_UID]["jsonData"]["implementation"] == "prometheus"
    # Every uid any datasource's jsonData points at (alertmanagerUid, datasourceUid ...) is provisioned too.
    pointed = {uid for datasource in provisioned.values() for uid in _uids(datasource.get("jsonData", {}))}
    assert {ALERTMANAGER_UID} <= pointed <= set(provisioned), pointed


_ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}|\$(\w+)")


def grafana_interpolate(value: str, environ: dict[str, str]) -> str:
    """A provisioning value as Grafana loads it (pkg/services/provisioning/values): `$$` is a literal `$`, and
    in between, ${NAME} and $NAME are expanded from the environment like Go's os.ExpandEnv (unset: empty)."""
    parts = value.split("$$")
    return "$".join(_ENV_REFERENCE.sub(lambda m: environ.get(m.group(1) or m.group(2), ""), part) for part in parts)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "stack" / "compose.yaml").read_text())


def test_exemplar_links_open_the_trace_in_the_sentry_the_stack_sends_spans_to() -> None:
    prometheus = _datasources()[PROMETHEUS_UID]
    [destination] = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destination["name"] == EXEMPLAR_TRACE_ID_LABEL
    assert "datasourceUid" not in destination, "no traces datasource: neither stack runs a trace backend"
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    for organization in ("https://acme.sentry.io", "https://sentry.example.com/organizations/acme"):
        template = grafana_interpolate(destination["url"], {TRACE_LINK_ENV: organization})
        # Grafana then fills the data link's ${__value.raw} with the exemplar's trace_id.
        assert template.replace("${__value.raw}", trace_id) == f"{organization}/performance/trace/{trace_id}/"
    assert "Sentry" in destination["urlDisplayLabel"]
    # The Compose stack gives Grafana that variable, and refuses to start without it ...
    services = _compose()["services"]
    assert re.fullmatch(rf"\$\{{{TRACE_LINK_ENV}:\?.+\}}", services["grafana"]["environment"][TRACE_LINK_ENV])
    # ... and its backend sends Sentry the spans (the DSN secret), so the trace the link names is there.
    assert "sentry_dsn" in services["backend"]["secrets"]


def test_every_datasource_url_is_a_service_of_the_compose_stack() -> None:
    """No datasource points at a server the stack does not run (as a Tempo at tempo:3200 once did)."""
    services = _compose()["services"]
    networks = [(service.get("networks") or {}).get("default") or {} for service in services.values()]
    names = set(services) | {alias for network in networks for alias in network.get("aliases", [])}
    for datasource in _datasources().values():
        host = datasource["url"].split("://", 1)[1].split(":", 1)[0]
        assert host in names, f"{datasource['name']}: {host} is not a service of stack/compose.yaml"


def test_compose_runs_the_grafana_line_the_dashboards_are_generated_for() -> None:
    """schemaVersion and panel options are the SDK's Grafana line; the Compose stack must run that line."""
    sdk_grafana = importlib.metadata.version("grafana-foundation-sdk").split("!", 1)[1]
    image = _compose()["services"]["grafana"]["image"]
    repository, tag = image.rsplit(":", 1)
    assert repository == "grafana/grafana"
    assert tag.split(".")[:2] == sdk_grafana.split(".")[:2], f"compose runs {tag}, the dashboards target {sdk_grafana}"


def test_prometheus_datasource_interval_is_the_scrape_interval() -> None:
    """Grafana derives $__rate_interval from timeInterval: it must be the stack's scrape interval."""
    stack = yaml.safe_load((REPO / "stack" / "prometheus" / "prometheus.yml").read_text())
    assert _datasources()[PROMETHEUS_UID]["jsonData"]["timeInterval"] == stack["global"]["scrape_interval"]


def test_dashboards_provider_loads_the_committed_dashboards_read_only() -> None:
    document = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "otelkit.yaml").read_text())
    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")  # the spec's troubleshooting path
    assert {d["uid"] for d in DASHBOARDS.values()} and all("id" not in d for d in DASHBOARDS.values())


def test_exporter_panels_select_the_scrape_jobs_of_prometheus_yml() -> None:
    """The exporter row's `job` selectors are the jobs prometheus.yml scrapes each exporter under."""
    config = yaml.safe_load((REPO / "stack" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]] for job in config["scrape_configs"]
    }
    for exporter, job in EXPORTER_JOBS.items():
        assert job in targets, f"prometheus.yml has no job {job!r} for the {exporter} exporter"
        assert targets[job] == [f"127.0.0.1:{DEFAULT_PORTS[f'{exporter}_exporter']}"], (job, targets[job])
