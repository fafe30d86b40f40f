"""The ``otelkit_capture`` fixture as a user's test suite sees it (through the pytest11 entry point)."""

from __future__ import annotations

import pytest

USER_TESTS = """
import otelkit
from fastapi import FastAPI
from fastapi.testclient import TestClient


def create_app():
    app = FastAPI()
    otelkit.init(app, service={"name": "shop"}, metrics={"system_metrics": False})

    @app.post("/pay")
    def pay():
        otelkit.record_payment("stripe", "success", 20, "EUR")
        return {"ok": True}

    return app


def test_counts(otelkit_capture):
    client = TestClient(create_app())
    client.post("/pay")
    client.post("/pay")
    assert otelkit_capture.value("payment_requests_total", provider="stripe", status="success") == 2
    assert otelkit_capture.value("payment_amount_total", provider="stripe", currency="EUR") == 40


def test_each_test_starts_from_nothing(otelkit_capture):
    otelkit.init(metrics={"system_metrics": False})
    otelkit_capture.assert_absent("payment_requests_total")


def test_spans_are_plain_dicts(otelkit_capture):
    handle = otelkit.init(metrics={"system_metrics": False})
    with handle.tracer.start_as_current_span("outer"):
        with handle.tracer.start_as_current_span("inner", attributes={"k": "v"}):
            pass
    inner, outer = otelkit_capture.spans
    assert inner["name"] == "inner" and inner["attributes"] == {"k": "v"}
    assert inner["parent_span_id"] == outer["span_id"] and inner["trace_id"] == outer["trace_id"]


def test_histogram_snapshot(otelkit_capture):
    otelkit.init(metrics={"system_metrics": False})
    with otelkit.track_generation("sdxl"):
        pass
    snapshot = otelkit_capture.histogram("generation_duration_seconds", model_type="sdxl")
    assert snapshot.count == 1 and snapshot.buckets[float("inf")] == 1 and 0.5 in snapshot.buckets
"""


def test_fixture_is_registered_and_isolates_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_failure_messages_list_the_series_that_exist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing="""
import otelkit

def test_wrong_label(otelkit_capture):
    otelkit.init(metrics={"system_metrics": False})
    otelkit.record_registration("ads")
    otelkit.record_registration("organic")
    otelkit_capture.value("user_registrations_total", source="tv")

def test_ambiguous(otelkit_capture):
    otelkit.init(metrics={"system_metrics": False})
    otelkit.record_registration("ads")
    otelkit.record_registration("organic")
    otelkit_capture.value("user_registrations_total")

def test_unexpected_series(otelkit_capture):
    otelkit.init(metrics={"system_metrics": False})
    otelkit.record_registration("ads")
    otelkit_capture.assert_absent("user_registrations_total", source="ads")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            '*no series matches user_registrations_total{source="tv"}; existing:*',
            '*user_registrations_total{source="ads"} 1*',
            '*user_registrations_total{source="organic"} 1*',
            "*2 series match user_registrations_total{}; add labels to pick one:*",
            '*expected no series user_registrations_total{source="ads"}, found:*',
        ]
    )


def test_capture_sends_nothing_over_the_network(pytester: pytest.Pytester) -> None:
    """An OTLP endpoint in the environment must not be contacted from inside a capture."""
    pytester.makepyfile(
        test_offline="""
import socket
import otelkit

def test_offline(otelkit_capture, monkeypatch):
    monkeypatch.setenv("OTELKIT_OTLP__ENDPOINT", "http://127.0.0.1:9")
    connects = []
    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: connects.append(addr) or real_connect(self, addr))
    handle = otelkit.init(metrics={"system_metrics": False})
    with handle.tracer.start_as_current_span("s"):
        otelkit.record_registration("ads")
    handle.force_flush()
    assert otelkit_capture.value("user_registrations_total", source="ads") == 1
    assert connects == []
"""
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
