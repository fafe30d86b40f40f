"""grafana/provisioning: every datasource a dashboard names exists there, exemplars link to traces, and the
dashboards provider loads the committed JSON. (No Grafana server can be installed here: see grafana/README.md.)"""

from __future__ import annotations

import re
from typing import Any

import yaml

from grafana.dashboards_src.config import (
    ALERTMANAGER_UID,
    EXEMPLAR_TRACE_ID_LABEL,
    EXPORTER_JOBS,
    PROMETHEUS_UID,
    TRACES_UID,
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


def test_prometheus_links_to_alertmanager_and_exemplars_to_traces() -> None:
    provisioned = _datasources()
    prometheus = provisioned[PROMETHEUS_UID]
    assert prometheus["type"] == "prometheus" and prometheus["isDefault"] is True
    assert prometheus["jsonData"]["alertmanagerUid"] == ALERTMANAGER_UID
    assert provisioned[ALERTMANAGER_UID]["type"] == "alertmanager"
    assert provisioned[ALERTMANAGER_UID]["jsonData"]["implementation"] == "prometheus"
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations == [{"name": EXEMPLAR_TRACE_ID_LABEL, "datasourceUid": TRACES_UID}]
    assert provisioned[TRACES_UID]["type"] == "tempo"
    # Every uid any datasource's jsonData points at (alertmanagerUid, datasourceUid ...) is provisioned too.
    pointed = {uid for datasource in provisioned.values() for uid in _uids(datasource.get("jsonData", {}))}
    assert {ALERTMANAGER_UID, TRACES_UID, PROMETHEUS_UID} <= pointed <= set(provisioned), pointed


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
