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


def test_histogram_snapshot_sum_and_finite_buckets(otelkit_capture):
    handle = otelkit.init(metrics={"system_metrics": False})
    otelkit.record_registration("ads")  # the SDK reports nothing, bound histograms included, until it has data
    durations = handle.business.generation_duration
    for seconds, status in [(0.02, "success"), (0.3, "success"), (0.3, "success"), (4.0, "success")]:
        durations.cell(("llm", status)).observe(seconds)
    snapshot = otelkit_capture.histogram("generation_duration_seconds", model_type="llm")
    assert snapshot.count == 4
    assert abs(snapshot.sum - 4.62) < 1e-9
    assert snapshot.buckets[0.01] == 0 and snapshot.buckets[0.025] == 1
    assert snapshot.buckets[0.25] == 1 and snapshot.buckets[0.5] == 3
    assert snapshot.buckets[2.5] == 3 and snapshot.buckets[5.0] == 4 and snapshot.buckets[float("inf")] == 4
"""


def test_fixture_is_registered_and_isolates_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


APP_INITIALISED_AT_IMPORT = """
import otelkit
from fastapi import FastAPI

otelkit.observe_queue_depth(lambda: {"emails": 4})

app = FastAPI()
handle = otelkit.init(app, service={"name": "shop"}, metrics={"system_metrics": False})


@otelkit.track_generation("sdxl")
def generate():
    return "image"


@app.post("/pay")
def pay():
    otelkit.record_payment("stripe", "success", 20, "EUR")
    generate()
    return {"ok": True}
"""

TESTS_OF_THE_IMPORTED_APP = """
import pytest
from fastapi.testclient import TestClient

import otelkit
from shop_app import app, handle

otelkit.record_payment("stripe", "success", 1000, "EUR")  # before any test: no test sees it


@pytest.mark.parametrize("calls", [2, 3])
def test_each_test_sees_only_its_own_recordings(otelkit_capture, calls):
    client = TestClient(app)
    for _ in range(calls):
        assert client.post("/pay").status_code == 200
    assert otelkit_capture.value("payment_requests_total", provider="stripe", status="success") == calls
    assert otelkit_capture.value("payment_amount_total", provider="stripe", currency="EUR") == 20 * calls
    assert otelkit_capture.value("generation_requests_total", model_type="sdxl", status="success") == calls
    assert otelkit_capture.histogram("generation_duration_seconds", model_type="sdxl").count == calls
    assert otelkit_capture.value("http_requests_total", method="POST", handler="/pay", status="200") == calls
    assert otelkit_capture.histogram("http_request_duration_seconds", method="POST", handler="/pay").count == calls
    assert otelkit_capture.value("queue_depth", queue="emails") == 4
    assert [span["name"] for span in otelkit_capture.spans] == ["POST /pay"] * calls


def test_series_untouched_by_the_test_are_absent(otelkit_capture):
    otelkit_capture.assert_absent("payment_requests_total")
    assert otelkit_capture.spans == []


def test_init_inside_the_test_returns_the_live_handle(otelkit_capture):
    assert otelkit.init(metrics={"system_metrics": False}) is handle
    otelkit.record_registration("ads")
    assert otelkit_capture.value("user_registrations_total", source="ads") == 1


def test_the_live_handle_outlives_the_captures():
    assert not handle.is_shut_down
"""


def test_fixture_works_with_an_app_initialised_at_import(pytester: pytest.Pytester) -> None:
    """The usual layout: ``app = FastAPI(); otelkit.init(app)`` in the app module, imported by tests."""
    pytester.makepyfile(shop_app=APP_INITIALISED_AT_IMPORT, test_shop=TESTS_OF_THE_IMPORTED_APP)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


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
