"""The dashboard-linter-equivalent rules pass on the committed dashboards, and each catches what it is for."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.grafana.dashboards import load_dashboards, panels, variables
from tests.grafana.lint import RULES

DASHBOARDS = load_dashboards()


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_committed_dashboards_pass(name: str, rule: str) -> None:
    assert RULES[rule](DASHBOARDS[name]) == []


def _first(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(panel for _, panel in panels(dashboard) if panel["title"] == title)


def _set_expr(title: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        target = _first(dashboard, title)["targets"][0]
        assert old in target["expr"], target["expr"]
        target["expr"] = target["expr"].replace(old, new)

    return mutate


def _bare_counter(dashboard: dict[str, Any]) -> None:
    """sum(rate(counter[...])) -> sum(counter): a counter's raw value, which only ever grows."""
    target = _first(dashboard, "Request rate by endpoint")["targets"][0]
    target["expr"] = target["expr"].replace("(rate(", "((").replace("[$__rate_interval]", "")


def _drop(path: list[str], title: str) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        node = _first(dashboard, title)
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _heatmap_field_unit(dashboard: dict[str, Any]) -> None:
    """A unit in the heatmap's fieldConfig, which Grafana's heatmap ignores."""
    _first(dashboard, "Response time heatmap")["fieldConfig"]["defaults"]["unit"] = "s"


def _range_query(title: str) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        _first(dashboard, title)["targets"][0].update(instant=False, range=True)

    return mutate


def _plain_share(title: str) -> Callable[[dict[str, Any]], None]:
    """(part or 0 * whole) / whole -> part / whole."""

    def mutate(dashboard: dict[str, Any]) -> None:
        target = _first(dashboard, title)["targets"][0]
        part, rest = target["expr"].removeprefix("(\n").split("\nor\n", 1)
        target["expr"] = f"{part}\n/\n{rest.split(chr(10) + '/' + chr(10), 1)[1]}"

    return mutate


def _neutral(title: str) -> Callable[[dict[str, Any]], None]:
    """Only the base colour left: the panel's level is gone."""

    def mutate(dashboard: dict[str, Any]) -> None:
        steps = _first(dashboard, title)["fieldConfig"]["defaults"]["thresholds"]["steps"]
        del steps[1:]

    return mutate


def _variable(which: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(dashboard: dict[str, Any]) -> None:
        variables(dashboard)[which].update(changes)

    return mutate


# (rule, dashboard, mutation, a fragment of the expected problem)
BROKEN = [
    ("template-datasource", "api-performance", _variable("datasource", name="ds"), "datasource variable"),
    ("template-service-instance", "api-performance", _variable("instance", refresh=1), "reloaded"),
    (
        "template-service-instance",
        "sla-slo",
        _variable("instance", query="label_values(target_info, instance)"),
        "follow",
    ),
    ("template-service-instance", "sla-slo", _variable("check", query="label_values(up{, check)"), "parse"),
    ("panel-basics", "business-kpis", _drop(["description"], "Active users by timeframe"), "description"),
    ("panel-basics", "infrastructure", _drop(["fieldConfig", "defaults", "unit"], "Queue depth"), "unit"),
    (
        "panel-basics",
        "api-performance",
        _drop(["fieldConfig", "defaults", "thresholds"], "Availability (5m)"),
        "thresholds",
    ),
    ("panel-basics", "api-performance", _drop(["options", "cellValues"], "Response time heatmap"), "cellValues"),
    ("panel-basics", "api-performance", _heatmap_field_unit, "ignored by the heatmap"),
    ("panel-levels", "infrastructure", _neutral("Cache hit ratio"), "Cache hit ratio"),
    ("panel-levels", "infrastructure", _neutral("Process open file descriptors"), "system_process_open_fds"),
    ("panel-levels", "api-performance", _neutral("P95 response time (5m)"), "p95_rate5m"),
    ("target-promql", "api-performance", _set_expr("Request rate by endpoint", "sum by", "sum by by"), "Request rate"),
    (
        "target-rate-interval",
        "api-performance",
        _set_expr("Request rate by endpoint", "[$__rate_interval]", "[5m]"),
        "fixed window [5m]",
    ),
    (
        "target-rate-interval",
        "business-kpis",
        _set_expr("Generation requests by outcome", "[$__rate_interval]", "[$__range]"),
        "$__range",
    ),
    (
        "target-rate-interval",
        "business-kpis",
        _range_query("Registrations in the time range"),
        "not an instant query",
    ),
    (
        "target-selectors",
        "infrastructure",
        _set_expr("Queue depth", ', instance=~"$instance"', ""),
        'instance=~"$instance"',
    ),
    (
        "target-selectors",
        "business-kpis",
        _set_expr("Active users by timeframe", 'job=~"$service"', 'job=~".+"'),
        "job",
    ),
    ("target-selectors", "sla-slo", _set_expr("Check status", 'check=~"$check"', 'check=~".*"'), "check"),
    ("target-counter-agg", "api-performance", _bare_counter, "outside rate()"),
    ("target-share-or-zero", "business-kpis", _plain_share("Generation success rate by model"), "generation_requests"),
    ("target-share-or-zero", "sla-slo", _plain_share("Check success ratio"), "synthetic_checks_total"),
]


@pytest.mark.parametrize(("rule", "name", "mutate", "fragment"), BROKEN, ids=[f"{b[0]}-{b[3]}" for b in BROKEN])
def test_each_rule_reports_a_broken_dashboard(
    rule: str, name: str, mutate: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    dashboard = copy.deepcopy(DASHBOARDS[name])
    mutate(dashboard)
    problems = RULES[rule](dashboard)
    assert any(fragment in problem for problem in problems), json.dumps(problems, indent=1)
