"""Every dashboard query, variables substituted, answers with data from the real pipeline.

An otelkit FastAPI app (the end-to-end test's app: real PostgreSQL and Redis) plus business calls makes demo
traffic; it goes SDK -> OTLP -> the otelkit collector -> a real Prometheus running the repo's generated rules.
Each panel query is then sent to that Prometheus twice, once with one service and instance chosen and once with
"All" for every variable, and must parse and return finite values: a panel that would show "No data" (or NaN)
fails the test.

The synthetic-check panels are fed by the real synthetic runner (otelkit.synthetic) checking the same app
through nginx, recording through the app's otelkit handle: one check always passes, one fails every third
round, one always fails, and the check-duration exemplars link to the runs' traces.

The Infrastructure dashboard's exporter row is fed too: node, PostgreSQL (the test's server), Redis (the
test's server) and nginx exporters, and nginx in front of the app, run as the one-command stack runs them
(tests/grafana/exporters.py) and scraped under the job names of stack/prometheus/prometheus.yml.

The demo also holds what a ratio panel must not lose: a model with only timeouts, endpoints without a 5xx,
a cache that never misses, a check that never passes. Their lines must be there, at 0 or 1.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from opentelemetry.trace import Tracer

import otelkit
from grafana.dashboards_src.config import EXPORTER_JOBS, EXPORTER_ROW_TITLE
from otelkit.handle import Otelkit
from otelkit.synthetic import Check, SyntheticRunner
from tests.e2e.test_pipeline import SERVICE, build_app
from tests.grafana import exporters
from tests.grafana.dashboards import (
    BUILT_INS,
    PROVISIONING_DIR,
    load_dashboards,
    panels,
    substitute,
    targets,
    variables,
)
from tests.support.asgi_server import serve
from tests.support.pipeline import Collector, Prometheus, running_pipeline

pytestmark = pytest.mark.slow

CHECKS = ("api-health", "docs", "always-down")
HIT_ONLY_CACHE = "sessions"


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Collector, Prometheus, exporters.StackPorts]]:
    """The pipeline, its Prometheus also scraping the exporter jobs at the ports the test will start them on."""
    ports = exporters.StackPorts()
    moved = exporters.moved_targets(ports.ports, list(EXPORTER_JOBS.values()))
    with running_pipeline(tmp_path_factory.mktemp("grafana-pipeline"), load_rules=True, moved_targets=moved) as (
        collector,
        prometheus,
    ):
        try:
            yield collector, prometheus, ports
        finally:
            ports.close()


def synthetic_runners(handle: Otelkit, base_url: str) -> tuple[SyntheticRunner, SyntheticRunner]:
    """Real runners checking the served app: (docs passes, docs fails on the app's 503); always-down never passes."""
    health = Check(name=CHECKS[0], url=f"{base_url}/health")
    docs, docs_down = (Check(name=CHECKS[1], url=f"{base_url}{path}") for path in ("/docs", "/fail"))
    down = Check(name=CHECKS[2], url=f"{base_url}/fail")
    return (
        SyntheticRunner([health, docs, down], handle=handle),
        SyntheticRunner([health, docs_down, down], handle=handle),
    )


def hit_only_cache(handle: Otelkit, redis_url: str) -> redis.Redis:
    """A second cache whose one key exists before it is instrumented: every lookup hits, none misses."""
    redis.Redis.from_url(redis_url).set("session:demo", "1")
    sessions = redis.Redis.from_url(redis_url)
    handle.instrument_redis(sessions, cache=HIT_ONLY_CACHE)
    return sessions


def demo_round(
    client: TestClient,
    tracer: Tracer,
    synthetic: tuple[SyntheticRunner, SyntheticRunner],
    sessions: redis.Redis,
    round_number: int,
) -> None:
    """One round of everything the dashboards show: HTTP (hits, misses, 503s, slow DB calls), business, checks."""
    for item_id in range(6):
        assert client.get(f"/items/{item_id}").status_code == 200
    assert client.get("/fail").status_code == 503
    assert client.get("/slow").status_code == 200
    assert sessions.get("session:demo") == b"1"
    # llm only ever times out: its success ratio must show 0, not vanish.
    for model, outcome in (("sdxl", "success"), ("sdxl", "success"), ("sdxl", "failure"), ("llm", "timeout")):
        with tracer.start_as_current_span(f"generate {model}"):  # generations run inside a request's span
            try:
                with otelkit.track_generation(model):
                    if outcome == "failure":
                        raise RuntimeError("model crashed")
                    if outcome == "timeout":
                        raise TimeoutError
            except (RuntimeError, TimeoutError):
                pass
    otelkit.record_payment("stripe", "success", 20, "EUR")
    otelkit.record_payment("paypal", "success", 12.5, "USD")
    otelkit.record_payment("stripe", "declined", 20, "EUR")
    otelkit.record_registration("ads" if round_number % 2 else "organic")
    passing, failing = synthetic
    results = asyncio.run((failing if round_number % 3 == 0 else passing).run_once())
    assert [r.success for r in results] == [True, round_number % 3 != 0, False], [r.reason for r in results]


def has_data(result: list[dict[str, Any]]) -> bool:
    return bool(result) and all(math.isfinite(float(series["value"][1])) for series in result)


def exemplar_label() -> str:
    datasources = yaml.safe_load((PROVISIONING_DIR / "datasources" / "otelkit.yaml").read_text())["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    return prometheus["jsonData"]["exemplarTraceIdDestinations"][0]["name"]


# Lines a ratio panel must keep: (dashboard, panel title, label, value) -> the value it must show.
KEPT_LINES = [
    ("business-kpis", "Generation success rate by model", "model_type", "llm", 0.0),
    ("api-performance", "Error rate (5xx share) by endpoint", "handler", "/items/{item_id}", 0.0),
    ("api-performance", "Error rate (5xx share) by endpoint", "handler", "/fail", 1.0),
    ("infrastructure", "Cache hit ratio", "cache", HIT_ONLY_CACHE, 1.0),
    ("sla-slo", "Check success ratio", "check", CHECKS[0], 1.0),
    ("sla-slo", "Check success ratio", "check", CHECKS[2], 0.0),
]


def _kept_lines_wrong(prometheus: Prometheus, dashboards: dict[str, Any], values: dict[str, str]) -> list[str]:
    wrong = []
    for dashboard, title, label, label_value, expected in KEPT_LINES:
        panel = next(p for _, p in panels(dashboards[dashboard]) if p["title"] == title)
        result = prometheus.query(substitute(panel["targets"][0]["expr"], values))
        found = {series["metric"].get(label): float(series["value"][1]) for series in result}
        if found.get(label_value) != expected:
            wrong.append(f"{dashboard} / {title}: {label}={label_value!r} is {found.get(label_value)}, want {expected}")
    return wrong


def _all_of(prometheus: Prometheus, dashboard: dict[str, Any], name: str) -> str | None:
    """What Grafana sends for "All" of a multi-value variable without an allValue: a regex of every value
    it lists (None while it lists nothing)."""
    values = sorted(_variable_values(prometheus, variables(dashboard)[name], {"service": ".*", "instance": ".*"}))
    return "(" + "|".join(values) + ")" if values else None


def test_every_panel_query_returns_data_from_the_pipeline(
    pipeline: tuple[Collector, Prometheus, exporters.StackPorts], postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    collector, prometheus, ports = pipeline
    app, handle, client = build_app(collector, postgres_url, redis_url)
    sessions = hit_only_cache(handle, redis_url)
    tracer = handle.tracer_provider.get_tracer("tests.grafana")
    instance = handle.tracer_provider.resource.attributes["service.instance.id"]
    started = time.time()

    dashboards = load_dashboards()
    checked = list(targets(dashboards))
    assert sum(t.row == EXPORTER_ROW_TITLE for t in checked) >= 10 and len(checked) > 50, "panels were lost"
    one = {"service": SERVICE, "instance": instance, "check": CHECKS[0], **BUILT_INS}
    queries: list[tuple[Any, dict[str, str], str]] = []
    exemplar_queries: list[tuple[Any, str]] = []
    missing: list[str] = []
    no_exemplars: list[str] = []
    wrong: list[str] = []
    deadline = time.monotonic() + 90
    round_number = 0
    with serve(app, name="grafana-demo") as base_url:
        ports.ports["demo"] = int(base_url.rsplit(":", 1)[1])  # nginx proxies to the served app
        names = (*exporters.EXPORTERS, *exporters.NGINX)
        with exporters.running(names, tmp_path, ports, postgres_url, redis_url):
            synthetic = synthetic_runners(handle, f"http://127.0.0.1:{ports.ports['nginx']}")
            # Keep the traffic going until every query answers (rate windows need samples on both sides of an
            # increase, the recording rules an evaluation after that); the deadline only bounds a failing run.
            while time.monotonic() < deadline:
                round_number += 1
                demo_round(client, tracer, synthetic, sessions, round_number)
                handle.force_flush()
                time.sleep(1.5)
                if not queries:  # "All" stands for what $service lists, once the service reported
                    queries, exemplar_queries = _queries(prometheus, dashboards, checked, one)
                missing = [
                    f"{t.where} [{'one' if v is one else 'all'}]: {e}"
                    for t, v, e in queries
                    if not has_data(prometheus.query(e))
                ]
                no_exemplars = [t.where for t, expr in exemplar_queries if not _exemplars(prometheus, expr, started)]
                wrong = _kept_lines_wrong(prometheus, dashboards, {**one, "instance": ".*", "check": ".*"})
                if queries and not missing and not no_exemplars and not wrong and round_number >= 3:
                    break
    assert queries, "the variables never listed the demo"
    assert missing == [], "panels without data:\n" + "\n".join(missing)
    assert no_exemplars == [], f"latency queries without exemplars: {no_exemplars}"
    assert wrong == [], "ratio panels lost or misreport a line:\n" + "\n".join(wrong)

    # Exemplars carry the trace id under the label the provisioned datasource links from.
    label = exemplar_label()
    for t, expr in exemplar_queries:
        for series in _exemplars(prometheus, expr, started):
            assert all(label in e["labels"] and len(e["labels"][label]) == 32 for e in series["exemplars"]), t.where

    _assert_variables_list_the_demo(prometheus, dashboards, instance)
    handle.shutdown()


def _queries(
    prometheus: Prometheus, dashboards: dict[str, Any], checked: list[Any], one: dict[str, str]
) -> tuple[list[tuple[Any, dict[str, str], str]], list[tuple[Any, str]]]:
    """Every target with one value per variable, and with "All" for every variable, as Grafana expands it;
    nothing while a dashboard's $service lists no service yet."""
    all_services = {name: _all_of(prometheus, dashboard, "service") for name, dashboard in dashboards.items()}
    if None in all_services.values():
        return [], []
    # The instance and check variables' allValue is .*
    everyone = {
        name: {"service": all_services[name], "instance": ".*", "check": ".*", **BUILT_INS} for name in dashboards
    }
    queries = [(t, values, substitute(t.expr, values)) for t in checked for values in (one, everyone[t.dashboard])]
    exemplar_queries = [(t, expr) for t, values, expr in queries if t.target.get("exemplar") and values is one]
    assert len(exemplar_queries) >= 5, "latency panels lost their exemplars"
    return queries, exemplar_queries


def _exemplars(prometheus: Prometheus, expr: str, started: float) -> list[dict[str, Any]]:
    series = prometheus.api("/api/v1/query_exemplars", query=expr, start=str(started - 60), end=str(time.time() + 60))
    return [s for s in series if s.get("exemplars")]


def _variable_values(prometheus: Prometheus, variable: dict[str, Any], values: dict[str, str]) -> set[str]:
    """A query variable's options, evaluated as Grafana does: label_values(selector, label)."""
    query = variable["query"].strip()
    selector, label = query.removeprefix("label_values(").removesuffix(")").rsplit(",", 1)
    selector = substitute(selector, values)
    series = prometheus.api("/api/v1/series", **{"match[]": selector, "start": str(time.time() - 3600)})
    return {s[label.strip()] for s in series if label.strip() in s}


def _assert_variables_list_the_demo(prometheus: Prometheus, dashboards: dict[str, Any], instance: str) -> None:
    """Each query variable offers the demo's values."""
    expected = {"service": SERVICE, "instance": instance, "check": CHECKS[0]}
    seen = 0
    for dashboard in dashboards.values():
        for name, variable in variables(dashboard).items():
            if variable["type"] != "query":
                continue
            values = _variable_values(prometheus, variable, {"service": SERVICE, "instance": ".*", "check": ".*"})
            assert expected[name] in values, f"{dashboard['title']} ${name}: {values}"
            if name == "service":
                assert "otel-collector" not in values, values  # the collector is not a service to pick
            seen += 1
    assert seen >= 9
