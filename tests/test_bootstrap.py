from __future__ import annotations

import importlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import otelkit
from otelkit import OtelkitConfigError


def test_init_returns_a_handle_with_the_service_resource() -> None:
    handle = otelkit.init(service={"name": "checkout", "version": "1.4.2", "environment": "prod"})
    attributes = handle.meter_provider._sdk_config.resource.attributes
    assert attributes["service.name"] == "checkout"
    assert attributes["service.version"] == "1.4.2"
    assert attributes["deployment.environment"] == "prod"
    assert len(str(attributes["service.instance.id"])) == 36


def test_resource_attributes_from_the_environment_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments,service.version=9.9")
    handle = otelkit.init(service={"version": "1.0"})
    attributes = handle.tracer_provider.resource.attributes
    assert attributes["team"] == "payments"
    assert attributes["service.version"] == "1.0"


def test_service_instance_id_differs_between_processes() -> None:
    code = (
        "import otelkit; h = otelkit.init(metrics={'system_metrics': False});"
        "print(h.tracer_provider.resource.attributes['service.instance.id']); h.shutdown()"
    )
    ids = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(ids) == 2


def test_second_init_returns_the_same_handle_and_warns_on_different_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = otelkit.init(service={"name": "a"})
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        assert otelkit.init() is first
        assert not caplog.records
        assert otelkit.init(service={"name": "b"}) is first
    assert "first configuration stays in force" in caplog.text
    assert first.settings.service.name == "a"


def test_shutdown_is_idempotent_and_allows_a_new_init() -> None:
    first = otelkit.init(metrics={"system_metrics": False})
    first.shutdown()
    first.shutdown()
    assert first.is_shut_down
    second = otelkit.init(metrics={"system_metrics": False})
    assert second is not first


def test_bad_settings_fail_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_SENTRY__SAMPLE_RATE", "1.5")
    with pytest.raises(OtelkitConfigError, match=r"OTELKIT_SENTRY__SAMPLE_RATE\) = '1\.5'"):
        otelkit.init()


def test_exponential_histograms_need_otlp() -> None:
    with pytest.raises(OtelkitConfigError, match="OTELKIT_PROMETHEUS__ENABLED=false"):
        otelkit.init(metrics={"histogram_aggregation": "exponential"})
    handle = otelkit.init(metrics={"histogram_aggregation": "exponential"}, prometheus={"enabled": False})
    assert handle.prometheus_registry is None


def test_init_installs_global_providers_when_none_are_set() -> None:
    handle = otelkit.init()
    assert metrics.get_meter_provider() is handle.meter_provider
    assert trace.get_tracer_provider() is handle.tracer_provider


def test_init_keeps_providers_the_application_set_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    mine_meter, mine_tracer = MeterProvider(), TracerProvider()
    metrics.set_meter_provider(mine_meter)
    trace.set_tracer_provider(mine_tracer)
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        handle = otelkit.init()
    assert metrics.get_meter_provider() is mine_meter
    assert trace.get_tracer_provider() is mine_tracer
    assert handle.meter_provider is not mine_meter
    assert "MeterProvider (set by the application) and TracerProvider (set by the application)" in caplog.text


def test_reinit_explains_that_the_first_globals_stay(caplog: pytest.LogCaptureFixture) -> None:
    otelkit.init().shutdown()
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        otelkit.init()
    assert "set by an earlier otelkit.init()" in caplog.text


def test_metrics_endpoint_is_added_to_the_app_at_the_configured_path() -> None:
    app = FastAPI()
    otelkit.init(app, service={"name": "at-a-path"}, prometheus={"metrics_path": "/internal/metrics"})
    otelkit.record_registration("ads")
    client = TestClient(app)
    response = client.get("/internal/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE user_registrations_total counter" in response.text
    assert 'user_registrations_total{source="ads"} 1.0' in response.text
    assert re.search(r'^target_info\{[^}]*service_name="at-a-path"', response.text, re.MULTILINE)
    assert client.get("/metrics").status_code == 404
    assert "/internal/metrics" not in json.dumps(client.get("/openapi.json").json())


def test_metrics_endpoint_speaks_openmetrics_when_asked() -> None:
    app = FastAPI()
    otelkit.init(app)
    otelkit.record_registration("ads")
    response = TestClient(app).get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert 'user_registrations_total{source="ads"} 1.0' in response.text


def test_prometheus_disabled_means_no_endpoint() -> None:
    app = FastAPI()
    handle = otelkit.init(app, prometheus={"enabled": False})
    assert handle.prometheus_registry is None
    assert TestClient(app).get("/metrics").status_code == 404


def test_force_flush_does_not_duplicate_series_in_the_next_scrape() -> None:
    app = FastAPI()
    handle = otelkit.init(app, metrics={"system_metrics": False})
    otelkit.record_registration("ads")
    handle.force_flush()
    handle.force_flush()
    text = TestClient(app).get("/metrics").text
    assert text.count('user_registrations_total{source="ads"}') == 1


def test_the_readme_quick_start_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "quickstart_app.py").write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = importlib.import_module("quickstart_app").app
    client = TestClient(app)
    assert client.post("/generate", params={"prompt": "cat"}).json() == {"image": "cat"}
    assert client.post("/pay", params={"amount": 9.5}).json() == {"ok": True}
    exposition = client.get("/metrics").text
    assert 'payment_amount_total{currency="EUR",provider="stripe"} 9.5' in exposition
    assert 'generation_requests_total{model_type="sdxl",status="success"} 1.0' in exposition
    assert 'http_requests_total{handler="/pay",method="POST",status="200"} 1.0' in exposition
    assert client.get("/health").json() == {"status": "ok"}
