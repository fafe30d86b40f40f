"""/sla/status and /sla/uptime in process, with Prometheus down, and the records they read in Prometheus mode."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import yaml
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

import otelkit
from otelkit.settings import DEFAULT_BUCKETS
from otelkit.sla import bucket_quantile, record_names
from otelkit.testing import MetricsCapture
from tests.support.ports import refused_port

QUIET = {"metrics": {"system_metrics": False}}
RULES = Path(__file__).resolve().parents[2] / "stack" / "prometheus" / "rules"
WINDOWS = ("1h", "1d", "7d", "30d")


def app_with_work(**init: object) -> tuple[FastAPI, otelkit.Otelkit]:
    app = FastAPI()

    @app.get("/work")
    def work(fail: bool = False) -> Response:
        return Response("no" if fail else "ok", status_code=500 if fail else 200)

    return app, otelkit.init(app, **QUIET, **init)


def test_without_traffic_every_value_is_null_and_the_status_unknown(otelkit_capture: MetricsCapture) -> None:
    app, _ = app_with_work(service={"name": "checkout"})
    client = TestClient(app)
    status = client.get("/sla/status")
    assert (status.status_code, status.headers["cache-control"]) == (200, "no-store")
    body = status.json()
    assert {key: body[key] for key in ("service", "source", "status", "compliance_window")} == {
        "service": "checkout",
        "source": "in-process",
        "status": "unknown",
        "compliance_window": "1d",
    }
    assert body["targets"]["availability"] == {
        "objective": ">= 0.995",
        "target": 0.995,
        "comparison": ">=",
        "window": "1d",
        "value": None,
        "compliant": None,
        "error_budget_remaining": None,
        "windows": dict.fromkeys(WINDOWS),
    }
    uptime = client.get("/sla/uptime").json()
    assert {key: uptime[key] for key in ("uptime", "checks", "incidents", "incident_lookback")} == {
        "uptime": dict.fromkeys(WINDOWS),
        "checks": {},
        "incidents": [],
        "incident_lookback": "1d",
    }


def test_in_process_values_follow_the_requests_served(otelkit_capture: MetricsCapture) -> None:
    app, _ = app_with_work()
    client = TestClient(app)
    for n in range(40):
        client.get("/work", params={"fail": n % 20 == 0})  # 2 of 40 fail
    targets = client.get("/sla/status").json()["targets"]
    assert targets["availability"]["windows"] == dict.fromkeys(WINDOWS, 0.95)
    assert (targets["error_rate"]["value"], targets["error_rate"]["compliant"]) == (0.05, False)
    # The P95 of the same histogram the metrics export (bucket placement, whatever the machine's speed)
    http = otelkit_capture.histogram("http_request_duration_seconds", handler="/work")
    cumulative = list(http.buckets.values())
    per_bucket = [int(high - low) for low, high in itertools.pairwise([0.0, *cumulative])]
    p95 = targets["p95_response_seconds"]
    assert p95["value"] == round(bucket_quantile(0.95, DEFAULT_BUCKETS, per_bucket), 9)
    assert p95["compliant"] is (p95["value"] <= 0.5)
    assert targets["average_response_seconds"]["value"] == round(http.sum / http.count, 9)
    again = client.get("/sla/status").json()["targets"]
    assert again["availability"]["windows"]["1h"] == 0.95  # /sla/status itself was not counted


def http_series(client: TestClient) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line.startswith("http_requests_total{")]


def test_otelkits_own_endpoints_are_not_the_services_traffic(otelkit_capture: MetricsCapture) -> None:
    """A Prometheus outage (503s) or a dashboard polling /sla/status must not move the service's error rate."""
    url = f"http://127.0.0.1:{refused_port()}"  # nothing listens there
    app, _ = app_with_work(sla={"prometheus_url": url, "prometheus_timeout_seconds": 1})
    client = TestClient(app)
    for path in ("/sla/status", "/sla/status", "/sla/status", "/sla/uptime", "/health/detailed", "/health"):
        client.get(path)
    client.get("/work")
    (series,) = http_series(client)
    assert 'handler="/work"' in series and 'status="200"' in series and series.endswith(" 1.0")
    assert not [span for span in otelkit_capture.spans if span["kind"] == "SERVER" and "/work" not in span["name"]]


def test_measured_on_request_otelkits_endpoints_carry_their_own_path(otelkit_capture: MetricsCapture) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    app, _ = app_with_work(
        sla={"prometheus_url": url, "prometheus_timeout_seconds": 1}, http={"measure_own_endpoints": True}
    )
    client = TestClient(app)
    for path in ("/sla/status", "/sla/status", "/health/detailed", "/metrics"):
        client.get(path)
    assert otelkit_capture.value("http_requests_total", handler="/sla/status", method="GET", status="503") == 2
    assert otelkit_capture.value("http_requests_total", handler="/health/detailed", method="GET") == 1
    otelkit_capture.assert_absent("http_requests_total", handler="unmatched")
    otelkit_capture.assert_absent("http_requests_total", handler="/metrics")  # still in prometheus.excluded_handlers


def test_a_prometheus_that_does_not_answer_is_a_503_with_the_reason(otelkit_capture: MetricsCapture) -> None:
    url = f"http://127.0.0.1:{refused_port()}"  # nothing listens there
    app, handle = app_with_work(
        service={"name": "checkout"}, sla={"prometheus_url": url, "prometheus_timeout_seconds": 2}
    )
    assert not handle.sla.in_process
    client = TestClient(app)
    client.get("/work")
    for path in ("/sla/status", "/sla/uptime"):
        response = client.get(path)
        assert response.status_code == 503
        body = response.json()
        assert {key: body[key] for key in ("status", "service", "source")} == {
            "status": "unavailable",
            "service": "checkout",
            "source": "prometheus",
        }
        assert body["error"].startswith(f"Prometheus at {url} did not answer: ConnectError")


def test_a_prometheus_that_accepts_but_never_answers_is_a_503_after_the_timeout(
    otelkit_capture: MetricsCapture,
) -> None:
    """A listening socket nobody accepts from: the connection opens (the kernel's backlog), no answer comes."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        app, _ = app_with_work(sla={"prometheus_url": url, "prometheus_timeout_seconds": 0.3})
        client = TestClient(app)
        for path in ("/sla/status", "/sla/uptime"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.json()["error"].startswith(f"Prometheus at {url} did not answer: ReadTimeout")


def test_paths_are_settings_an_app_route_wins_and_the_endpoints_can_be_off(otelkit_capture: MetricsCapture) -> None:
    app = FastAPI()

    @app.get("/sla/status")
    def own() -> dict[str, str]:
        return {"mine": "yes"}

    otelkit.init(app, **QUIET, sla={"uptime_path": "/internal/uptime"})
    client = TestClient(app)
    assert client.get("/sla/status").json() == {"mine": "yes"}
    assert client.get("/internal/uptime").json()["source"] == "in-process"
    assert client.get("/sla/uptime").status_code == 404
    otelkit_capture.handles[0].shutdown()
    off = FastAPI()
    otelkit.init(off, **QUIET, sla={"enabled": False})
    assert TestClient(off).get("/sla/status").status_code == 404


def test_every_record_the_prometheus_mode_reads_is_generated() -> None:
    generated = {
        rule["record"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    wanted = set(record_names())
    assert len(wanted) == 52  # 5 HTTP and 2 x 4 synthetic records, 4 windows each
    assert wanted - generated == set()
