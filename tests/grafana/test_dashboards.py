"""The committed dashboards: fresh from the generator, known to Grafana 11.6's schema, and saying what the spec asks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from grafana import generate
from grafana.dashboards_src.config import DASHBOARD_UIDS, RULES, RUNBOOKS, SLA_AVERAGE_RESPONSE_SECONDS
from tests.grafana.dashboards import DASHBOARDS_DIR, REPO, load_dashboards, panels, targets

DASHBOARDS = load_dashboards()
RULES_DIR = REPO / "stack" / "prometheus" / "rules"


def test_committed_json_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = generate.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in DASHBOARDS_DIR.glob("*.json")), (
        "grafana/dashboards/ holds other files than the generator writes: run `python -m grafana.generate`"
    )
    for path in written:
        assert path.read_text() == (DASHBOARDS_DIR / path.name).read_text(), (
            f"grafana/dashboards/{path.name} is stale: run `.venv/bin/python -m grafana.generate`"
        )


def test_the_four_dashboards_of_the_issue_exist_with_fixed_uids() -> None:
    assert {d["uid"] for d in DASHBOARDS.values()} == set(DASHBOARD_UIDS.values())
    assert len({d["title"] for d in DASHBOARDS.values()}) == 4
    for dashboard in DASHBOARDS.values():
        assert "otelkit" in dashboard["tags"] and dashboard["editable"] is False


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_field_survives_grafana_11_6_typed_models(name: str) -> None:
    """Decoding with the SDK's typed Grafana 11.6 models drops any key the schema does not know."""
    register_default_plugins()
    document = DASHBOARDS[name]
    decoded = json.loads(JSONEncoder(sort_keys=True).encode(DashboardModel.from_json(document)))
    assert decoded == document


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_layout_fits_the_grid_without_overlap(name: str) -> None:
    cells: dict[tuple[int, int], str] = {}
    ids = [panel["id"] for panel in DASHBOARDS[name]["panels"]]
    assert len(ids) == len(set(ids)) and all(i > 0 for i in ids), ids
    for panel in DASHBOARDS[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboards_link_to_each_other_and_to_the_spec_runbooks() -> None:
    linked_runbooks: set[str] = set()
    for dashboard in DASHBOARDS.values():
        urls = [link["url"] for link in dashboard["links"]]
        others = {f"/d/{uid}" for uid in DASHBOARD_UIDS.values()} - {f"/d/{dashboard['uid']}"}
        assert others <= set(urls), dashboard["title"]
        for link in dashboard["links"]:
            if link["url"].startswith("/d/"):
                assert link["includeVars"] and link["keepTime"], link
        panel_links = [link["url"] for _, panel in panels(dashboard) for link in panel.get("links", [])]
        for url in urls + panel_links:
            assert url.startswith("/d/") or url in RUNBOOKS.values(), url
        linked_runbooks |= {url for url in urls + panel_links if url in RUNBOOKS.values()}
    assert linked_runbooks == set(RUNBOOKS.values())


def test_latency_panels_ask_for_exemplars() -> None:
    """Every panel over a duration histogram fetches exemplars (the dots that open a trace) with one query
    (one is enough: more would draw each exemplar several times), and only bucket queries ask for them."""
    latency = [t for t in targets(DASHBOARDS) if re.search(r"_duration_seconds_bucket\b", t.expr)]
    panels_with_latency = {(t.dashboard, t.panel["title"]) for t in latency}
    with_exemplars = {(t.dashboard, t.panel["title"]) for t in latency if t.target.get("exemplar")}
    assert len(panels_with_latency) >= 6
    assert panels_with_latency - with_exemplars == set()
    assert [t.where for t in targets(DASHBOARDS) if t.target.get("exemplar") and t not in latency] == []


WINDOWED = re.compile(r"(?:rate|increase)\((\w+)(?:\{[^}]*\})?\[(\w+)\]\)")


def test_panels_use_the_recording_rules_where_one_exists() -> None:
    """Service-level panels read the recorded series; none recomputes a recorded metric over a recorded window."""
    groups = [group for path in RULES_DIR.glob("*.yml") for group in yaml.safe_load(path.read_text())["groups"]]
    rules = {rule["record"]: rule["expr"] for group in groups for rule in group["rules"] if "record" in rule}
    recorded_windows = {pair for expr in rules.values() for pair in WINDOWED.findall(expr)}
    assert ("http_requests_total", "5m") in recorded_windows  # the pattern reads the rules file
    used = {name for t in targets(DASHBOARDS) for name in re.findall(r"\bjob(?:_\w+)?:\w+:\w+", t.expr)}
    assert used <= set(rules), used - set(rules)
    assert len(used) >= 10, used
    recomputed = [(t.where, pair) for t in targets(DASHBOARDS) for pair in WINDOWED.findall(t.expr)]
    assert [(where, pair) for where, pair in recomputed if pair in recorded_windows] == []


def _panel(dashboard: str, title: str) -> dict[str, Any]:
    found = [panel for _, panel in panels(DASHBOARDS[dashboard]) if panel["title"] == title]
    assert len(found) == 1, f"{dashboard}: {title}"
    return found[0]


def _threshold_values(panel: dict[str, Any]) -> set[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return {step["value"] for step in steps if step["value"] is not None}


# (dashboard, panel title) -> the alert or SLA thresholds its colours and dashed lines must show.
EXPECTED_THRESHOLDS = {
    ("api-performance", "P95 response time (5m)"): {RULES.latency_threshold_seconds},
    ("api-performance", "P95 response time by endpoint"): {RULES.latency_threshold_seconds},
    ("api-performance", "5xx error ratio (5m)"): {RULES.sla_error_ratio, RULES.error_ratio_critical},
    ("api-performance", "Error rate (5xx share) by endpoint"): {RULES.sla_error_ratio, RULES.error_ratio_critical},
    ("api-performance", "Average response time by endpoint"): {SLA_AVERAGE_RESPONSE_SECONDS},
    ("business-kpis", "Generation success ratio (15m)"): {RULES.generation_success_ratio_warning},
    ("business-kpis", "Payment failure ratio (15m)"): {RULES.payment_failure_ratio_critical},
    ("infrastructure", "Host CPU usage"): {RULES.cpu_percent_warning},
    ("infrastructure", "Host memory usage"): {RULES.memory_percent_critical},
    ("infrastructure", "Disk usage by mount point"): {RULES.disk_percent_warning},
    ("infrastructure", "Queue depth"): {RULES.queue_depth_warning},
    ("infrastructure", "Pool usage (in use / max)"): {RULES.db_pool_usage_ratio_warning},
    ("sla-slo", "Availability (1d)"): {RULES.sla_availability},
    ("sla-slo", "Error rate (1d)"): {RULES.sla_error_ratio},
    ("sla-slo", "P95 response time vs 500 ms"): {RULES.latency_threshold_seconds},
    ("sla-slo", "Availability vs the 99.5% target"): {RULES.slo_availability},
    ("sla-slo", "Error budget burn rate"): {w.factor for w in RULES.burn_rate_windows},
}


@pytest.mark.parametrize(("dashboard", "title"), sorted(EXPECTED_THRESHOLDS))
def test_thresholds_are_the_alerts_thresholds(dashboard: str, title: str) -> None:
    panel = _panel(dashboard, title)
    assert _threshold_values(panel) == EXPECTED_THRESHOLDS[(dashboard, title)]
    if panel["type"] == "timeseries":
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_the_spec_thresholds_are_the_spec_numbers() -> None:
    """The shared config still says what the spec says (a typo there would move alerts and lines together)."""
    assert (RULES.latency_threshold_seconds, RULES.slo_availability, RULES.sla_error_ratio) == (0.5, 0.995, 0.01)
    assert (RULES.error_ratio_critical, RULES.payment_failure_ratio_critical) == (0.05, 0.10)
    assert (RULES.cpu_percent_warning, RULES.memory_percent_critical, RULES.disk_percent_warning) == (90, 95, 90)
    assert (RULES.queue_depth_warning, RULES.generation_success_ratio_warning) == (500, 0.95)
