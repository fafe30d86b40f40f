"""The checks of grafana/dashboard-linter, written here because the linter cannot be had on this machine.

The Go module proxy refuses every version of github.com/grafana/dashboard-linter (it has no release the proxy
serves; see grafana/README.md), so these rules reproduce the ones that matter for Prometheus dashboards, with
PromQL parsed by a real parser (promql-parser, the Rust port of Prometheus's own):

- template-datasource: a `datasource` variable of type prometheus, labelled "Data source";
- template-job / template-instance (here `service` / `instance`): query variables through the datasource
  variable, reloaded on time-range change, whose label_values() selectors parse;
- panel-datasource, panel-title-description, panel-units (+ thresholds on every panel, which the issue asks;
  a heatmap's units are read where Grafana reads them, its options, and fieldConfig units there are an error);
- panel-levels (not the linter's): a ratio, or a metric with an alert, SLA or meaningful level, is never shown
  in one neutral colour;
- target-promql (parses), target-rate-interval (rate/irate over $__rate_interval; any fixed window is named
  in the panel title; a total over $__range is an instant query), target-job / target-instance (every
  selector bound to the variables), and target-counter-agg (counters only inside rate/irate/increase);
- target-share-or-zero (not the linter's): a part over its whole is written (part or 0 * whole) / whole.

Each rule returns the problems it found as strings; an empty list is a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import promql_parser

from grafana.dashboards_src.config import CHECK, EXPORTER_JOBS, EXPORTER_ROW_TITLE, INSTANCE, SERVICE
from tests.grafana.dashboards import panels, substitute, variables

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

# Grafana's built-in interval variables, replaced by durations nothing else uses so the parsed AST shows which
# one a range came from (dashboard-linter does the same).
MAGIC = {"__rate_interval": "7777s", "__range": "6666s", "__interval": "5555s"}
RATE_INTERVAL, RANGE = timedelta(seconds=7777), timedelta(seconds=6666)
RATE_FUNCTIONS = {"rate", "irate"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}
COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
# postgres_exporter's counters do not end in _total.
COUNTERS_WITHOUT_SUFFIX = {"pg_stat_database_xact_commit"}

# Grafana value-format ids (packages/grafana-data valueFormats) a dashboard of this kind may use.
VALID_UNITS = {
    "none", "short", "percent", "percentunit", "bool", "bool_yes_no", "bool_on_off",
    "ns", "µs", "ms", "s", "m", "h", "d", "dtdurations", "dtdurationms",
    "reqps", "rps", "ops", "opm", "rpm", "wps", "iops", "cps",
    "bytes", "decbytes", "bits", "kbytes", "mbytes", "gbytes", "Bps", "binBps", "bps",
    "currencyEUR", "currencyUSD", "currencyGBP",
}  # fmt: skip

Problems = list[str]
Rule = Callable[[dict[str, Any]], Problems]


def _label_values_selector(query: str) -> str | None:
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, flags=re.S)
    return match.group(1) if match else None


def _parse(expr: str, values: dict[str, str] | None = None) -> Any:
    return promql_parser.parse(substitute(expr, {**MAGIC, **(values or {})}))


def _walk(node: Any, parents: tuple[Any, ...] = ()) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    yield node, parents
    below = (*parents, node)
    if isinstance(node, promql_parser.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, promql_parser.AggregateExpr):
        children = [node.expr] + ([node.param] if node.param is not None else [])
    elif isinstance(node, promql_parser.Call):
        children = list(node.args)
    elif isinstance(node, promql_parser.MatrixSelector):
        children = [node.vector_selector]
    elif isinstance(node, promql_parser.SubqueryExpr | promql_parser.ParenExpr | promql_parser.UnaryExpr):
        children = [node.expr]
    else:
        children = []
    for child in children:
        yield from _walk(child, below)


def _panel_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for row, panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield row, panel, target


def template_datasource(dashboard: dict[str, Any]) -> Problems:
    found = [v for v in variables(dashboard).values() if v["type"] == "datasource"]
    if len(found) != 1:
        return [f"{dashboard['title']}: {len(found)} datasource variables, want 1"]
    variable = found[0]
    problems = []
    if (variable["name"], variable.get("label"), variable.get("query")) != ("datasource", "Data source", "prometheus"):
        problems.append(f"{dashboard['title']}: datasource variable is {variable}")
    return problems


def template_service_instance(dashboard: dict[str, Any]) -> Problems:
    problems = []
    found = variables(dashboard)
    for name in ("service", "instance"):
        variable = found.get(name)
        if variable is None:
            problems.append(f"{dashboard['title']}: no `{name}` variable")
            continue
        if variable["type"] != "query" or variable.get("datasource") != DATASOURCE_REF:
            problems.append(f"{dashboard['title']}: `{name}` is not a query through $datasource")
        if variable.get("refresh") != 2:
            problems.append(f"{dashboard['title']}: `{name}` is not reloaded when the time range changes")
        if not (variable.get("multi") and variable.get("includeAll")):
            problems.append(f"{dashboard['title']}: `{name}` does not offer several values and All")
    if "instance" in found and "$service" not in found["instance"].get("query", ""):
        problems.append(f"{dashboard['title']}: `instance` values do not follow the chosen service")
    for variable in found.values():
        if variable["type"] != "query":
            continue
        selector = _label_values_selector(variable.get("query", ""))
        if selector is None:
            problems.append(f"{dashboard['title']}: `{variable['name']}` query is not label_values(selector, label)")
            continue
        try:
            _parse(selector, {name: ".*" for name in found})
        except (ValueError, KeyError) as error:
            problems.append(f"{dashboard['title']}: `{variable['name']}` selector does not parse: {error}")
    return problems


def panel_basics(dashboard: dict[str, Any]) -> Problems:
    """Datasource, title, description, unit and thresholds on every panel."""
    problems = []
    for _, panel in panels(dashboard):
        where = f"{dashboard['title']} / {panel.get('title')!r}"
        if not panel.get("title") or not panel.get("description"):
            problems.append(f"{where}: missing title or description")
        if panel.get("datasource") != DATASOURCE_REF:
            problems.append(f"{where}: datasource is {panel.get('datasource')}, not the $datasource variable")
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if panel["type"] == "heatmap":
            problems.extend(_heatmap_basics(where, panel))
        else:
            if defaults.get("unit") not in VALID_UNITS:
                problems.append(f"{where}: unit {defaults.get('unit')!r} is not a Grafana unit")
            steps = defaults.get("thresholds", {}).get("steps", [])
            values = [step.get("value") for step in steps]
            if not steps or values[0] is not None or values[1:] != sorted(v for v in values[1:] if v is not None):
                problems.append(f"{where}: thresholds {steps} are not a base step followed by ascending values")
        if not panel.get("targets"):
            problems.append(f"{where}: no query")
        for target in panel.get("targets", []):
            if target.get("datasource") != DATASOURCE_REF:
                problems.append(f"{where}: target {target.get('refId')} does not use the $datasource variable")
    return problems


# The heatmap panel disables every standard field option but Links: a unit or thresholds there are ignored.
HEATMAP_IGNORED = ("unit", "thresholds", "min", "max", "decimals", "color", "mappings")


def _heatmap_basics(where: str, panel: dict[str, Any]) -> Problems:
    """A heatmap's units are its options' (y axis: the buckets; cells: the values), never fieldConfig's."""
    problems = []
    options = panel.get("options", {})
    units = {
        "options.yAxis.unit": options.get("yAxis", {}).get("unit"),
        "options.cellValues.unit": options.get("cellValues", {}).get("unit"),
    }
    for setting, unit in units.items():
        if unit not in VALID_UNITS:
            problems.append(f"{where}: {setting} {unit!r} is not a Grafana unit")
    ignored = [key for key in HEATMAP_IGNORED if key in panel.get("fieldConfig", {}).get("defaults", {})]
    if ignored:
        problems.append(f"{where}: fieldConfig.defaults {ignored} are ignored by the heatmap; use its options")
    return problems


def target_promql(dashboard: dict[str, Any]) -> Problems:
    problems = []
    names = {name: ".*" for name in variables(dashboard)}
    for _, panel, target in _panel_targets(dashboard):
        try:
            _parse(target["expr"], names)
        except (ValueError, KeyError) as error:
            problems.append(f"{dashboard['title']} / {panel['title']!r}: {error}")
    return problems


def _window_text(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def target_rate_interval(dashboard: dict[str, Any]) -> Problems:
    problems = []
    names = {name: ".*" for name in variables(dashboard)}
    for _, panel, target in _panel_targets(dashboard):
        where = f"{dashboard['title']} / {panel['title']!r} / {target['refId']}"
        for node, parents in _walk(_parse(target["expr"], names)):
            if not isinstance(node, promql_parser.MatrixSelector):
                continue
            function = parents[-1].func.name if parents and isinstance(parents[-1], promql_parser.Call) else None
            if node.range == RANGE and function not in RATE_FUNCTIONS and not target.get("instant"):
                # One total over the whole time range: a range query would recompute it at every step.
                problems.append(f"{where}: {function}() over $__range is not an instant query")
            if node.range == RATE_INTERVAL or (node.range == RANGE and function not in RATE_FUNCTIONS):
                continue
            if node.range == RANGE:
                problems.append(f"{where}: {function}() over $__range: use $__rate_interval")
            elif f"({_window_text(node.range)})" not in panel["title"]:
                problems.append(f"{where}: fixed window [{_window_text(node.range)}] not named in the panel title")
    return problems


def _matchers(selector: Any) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}


def _as_matcher(text: str) -> tuple[str, str]:
    """'job=~"$service"' -> ("job", "$service"): the generator's selector constants, as the rule expects them."""
    name, value = text.split("=~", 1)
    return name, value.strip('"')


def target_selectors(dashboard: dict[str, Any]) -> Problems:
    """Every selector is bound to the variables (job/instance), with the documented exceptions."""
    service, instance, check = (_as_matcher(selector) for selector in (SERVICE, INSTANCE, CHECK))
    exporter_jobs = set(EXPORTER_JOBS.values())
    problems = []
    names = {name: f"${name}" for name in variables(dashboard)}
    for row, panel, target in _panel_targets(dashboard):
        where = f"{dashboard['title']} / {panel['title']!r} / {target['refId']}"
        for node, _ in _walk(_parse(target["expr"], names)):
            if not isinstance(node, promql_parser.VectorSelector):
                continue
            matchers = _matchers(node)
            job = matchers.get("job", ("", ""))[1]
            if row == EXPORTER_ROW_TITLE:
                # Exporters are scrape jobs of their own; their `instance` is the exporter, not a service process.
                if not set(job.split("|")) <= exporter_jobs:
                    problems.append(f"{where}: exporter selector {node} has no exporter job")
                continue
            if "synthetic_" in node.name:
                # The synthetic runner is a service of its own: its checks (and their records) are chosen by name.
                if matchers.get(check[0], ("", ""))[1] != check[1]:
                    problems.append(f"{where}: {node} lacks {CHECK}")
                continue
            if matchers.get(service[0]) is None or matchers[service[0]][1] != service[1]:
                problems.append(f"{where}: {node} lacks {SERVICE}")
            # Recording rules (level:metric:operation) aggregate by job: they have no instance to select.
            if ":" not in node.name and matchers.get(instance[0], ("", ""))[1] != instance[1]:
                problems.append(f"{where}: {node} lacks {INSTANCE}")
    return problems


def target_counter_agg(dashboard: dict[str, Any]) -> Problems:
    problems = []
    names = {name: ".*" for name in variables(dashboard)}
    for _, panel, target in _panel_targets(dashboard):
        for node, parents in _walk(_parse(target["expr"], names)):
            if not isinstance(node, promql_parser.VectorSelector):
                continue
            if not (node.name.endswith(COUNTER_SUFFIXES) or node.name in COUNTERS_WITHOUT_SUFFIX):
                continue
            inside = (
                len(parents) >= 2
                and isinstance(parents[-1], promql_parser.MatrixSelector)
                and isinstance(parents[-2], promql_parser.Call)
                and parents[-2].func.name in COUNTER_FUNCTIONS
            )
            if not inside:
                problems.append(f"{dashboard['title']} / {panel['title']!r}: counter {node.name} outside rate()")
    return problems


# A panel draws a level (a threshold step beyond the base colour) when what it shows has one: any ratio, and the
# metrics below, each with the level it is held to. Recording rules of ratios and latencies count as well.
LEVELLED_UNITS = {"percent", "percentunit"}
LEVELLED_METRICS = {
    "http_request_duration_seconds_bucket": "the 500 ms P95 of HttpLatencyP95High",
    "synthetic_check_duration_seconds_bucket": "the SLA's 1 s",
    "synthetic_check_success": "a check is up or down",
    "up": "a target is up or down",
    "queue_depth": "QueueDepthHigh",
    "system_process_open_fds": "the per-process open-file limit",
}
LEVELLED_RECORDS = re.compile(r"(^|_)(ratio|p95|mean)_")  # in the operation of level:metric:operation


def panel_levels(dashboard: dict[str, Any]) -> Problems:
    """No panel whose value has an alert, SLA or meaningful level shows it in a single neutral colour."""
    problems = []
    names = {name: ".*" for name in variables(dashboard)}
    for _, panel in panels(dashboard):
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if panel["type"] == "heatmap" or len(defaults.get("thresholds", {}).get("steps", [])) > 1:
            continue
        read = {
            node.name
            for target in panel.get("targets", [])
            for node, _ in _walk(_parse(target["expr"], names))
            if isinstance(node, promql_parser.VectorSelector)
        }
        reasons = [f"unit {defaults.get('unit')}"] if defaults.get("unit") in LEVELLED_UNITS else []
        reasons += [f"{name} ({LEVELLED_METRICS[name]})" for name in sorted(read) if name in LEVELLED_METRICS]
        reasons += [name for name in sorted(read) if ":" in name and LEVELLED_RECORDS.search(name.rsplit(":", 1)[1])]
        if reasons:
            problems.append(f"{dashboard['title']} / {panel['title']!r}: one neutral colour for {reasons}")
    return problems


def _unwrap(node: Any) -> Any:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node


def _selected(node: Any) -> dict[str, set[str]]:
    """Metric name -> the label matchers (besides the variables' job/instance/check) of its selectors."""
    found: dict[str, set[str]] = {}
    for child, _ in _walk(node):
        if isinstance(child, promql_parser.VectorSelector):
            extra = {f"{name}{op}{value}" for name, (op, value) in _matchers(child).items()}
            found.setdefault(child.name, set()).update(
                m for m in extra if not m.startswith(("job", "instance", "check", "__name__"))
            )
    return found


def target_share_or_zero(dashboard: dict[str, Any]) -> Problems:
    """A part over its whole (`x{status="5.."}` / `x`) keeps label values without a part: `(part or 0 * whole)`.

    Otherwise `sum by (handler)` of the part has no series for a handler without a 5xx, and the division drops it:
    the panel loses exactly the line that shows 0 (or, for a success ratio, the model that never succeeded).
    """
    problems = []
    names = {name: ".*" for name in variables(dashboard)}
    for _, panel, target in _panel_targets(dashboard):
        for node, _ in _walk(_parse(target["expr"], names)):
            if not (isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "/"):
                continue
            part, whole = _selected(node.lhs), _selected(node.rhs)
            narrowed = [name for name in part if name in whole and part[name] - whole[name]]
            lhs = _unwrap(node.lhs)
            if narrowed and not (isinstance(lhs, promql_parser.BinaryExpr) and str(lhs.op) == "or"):
                problems.append(
                    f"{dashboard['title']} / {panel['title']!r} / {target['refId']}: {narrowed} part / whole "
                    "drops label values without a part: write (part or 0 * whole) / whole"
                )
    return problems


RULES: dict[str, Rule] = {
    "template-datasource": template_datasource,
    "template-service-instance": template_service_instance,
    "panel-basics": panel_basics,
    "panel-levels": panel_levels,
    "target-promql": target_promql,
    "target-rate-interval": target_rate_interval,
    "target-selectors": target_selectors,
    "target-counter-agg": target_counter_agg,
    "target-share-or-zero": target_share_or_zero,
}
