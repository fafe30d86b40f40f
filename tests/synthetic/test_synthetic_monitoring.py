"""The runner against a real app on loopback with injected failures: metrics, spans and the SLA they imply.

The runner runs inside the service's process here, so the in-process SLA windows see both the
service's requests and the check runs; tests/sla/test_prometheus_mode.py does the same through
the collector and Prometheus.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from datetime import datetime

import httpx
import pytest

import otelkit
from otelkit.settings import DEFAULT_BUCKETS
from otelkit.sla import bucket_quantile
from otelkit.sla.incidents import iso
from otelkit.synthetic import Check, SyntheticRunner, first_delay, next_delay
from otelkit.testing import MetricsCapture
from tests.support.asgi_server import serve
from tests.support.otlp_sink import OtlpSink, start_grpc_sink
from tests.support.ports import refused_port
from tests.synthetic.target import DELAYS, Target, wait_until

QUIET = {"metrics": {"system_metrics": False}}
SCHEDULE = ["ok", "error", "ok", "slow", "ok", "wrong", "ok", "hang", "ok", "ok"]


def api_check(base_url: str) -> Check:
    return Check(
        name="api",
        steps=[{"url": f"{base_url}/scripted/api", "expect": {"json": {"$.status": "ok"}}, "latency_budget_ms": 600}],
        timeout_seconds=2.0,
    )


def down_check() -> Check:
    return Check(name="down", steps=[{"url": f"http://127.0.0.1:{refused_port()}/health"}], timeout_seconds=1)


def test_injected_failures_give_exactly_the_scheduled_metrics_and_sla(otelkit_capture: MetricsCapture) -> None:
    target = Target({"api": SCHEDULE}, service={"name": "checkout"}, **QUIET)
    with serve(target.app) as base_url:
        runner = SyntheticRunner([api_check(base_url), down_check()], concurrency=2)
        runs = [asyncio.run(runner.run_once()) for _ in SCHEDULE]
        windows = target.handle.sla.in_process_source.http
        # the hung requests finish on the server after the check gave up on them
        wait_until(lambda: windows.totals(3600).count == len(SCHEDULE), "the service recorded every request")
        status = httpx.get(f"{base_url}/sla/status").json()
        uptime = httpx.get(f"{base_url}/sla/uptime").json()

    results = ("success", "failure", "slow", "timeout", "error")
    for check, expected in (("api", [6, 2, 1, 1, 0]), ("down", [0, 0, 0, 0, 10])):
        counted = [otelkit_capture.value("synthetic_checks_total", check=check, result=result) for result in results]
        assert counted == expected, check
    assert otelkit_capture.value("synthetic_check_success", check="api") == 1  # the last run passed
    assert otelkit_capture.value("synthetic_check_success", check="down") == 0
    durations = otelkit_capture.histogram("synthetic_check_duration_seconds", check="api")
    # Bucket placement, not timing: 8 runs answered at once (6 successes, 2 failures by their answer),
    # so within the 0.6 s budget; "slow" waits 1.2 s and "hang" is cut at the 2 s timeout, so both land
    # in (1 s, 2.5 s].
    assert (durations.count, durations.buckets[1.0], durations.buckets[2.5]) == (10, 8, 10)
    assert durations.sum >= DELAYS["slow"] + api_check(base_url).timeout_seconds

    # What the server saw: 10 requests, one 500; 8 answered at once, one after 1.2 s, one after 2.6 s.
    targets = status["targets"]
    assert (status["source"], status["status"], status["service"]) == ("in-process", "violated", "checkout")
    assert targets["availability"]["windows"] == {"1h": 0.9, "1d": 0.9, "7d": 0.9, "30d": 0.9}
    assert (targets["availability"]["compliant"], targets["availability"]["error_budget_remaining"]) == (False, -19.0)
    assert targets["error_rate"]["value"] == 0.1
    assert (targets["error_rate"]["compliant"], targets["error_rate"]["error_budget_remaining"]) == (False, -9.0)
    # rank 9.5 of 10: 9 at or below 2.5 s (the slow one after 1.2 s), the hung one after 2.6 s, so
    # half-way into (2.5, 5]
    assert targets["p95_response_seconds"]["value"] == 3.75
    assert targets["p95_response_seconds"]["compliant"] is False
    # two requests in 10 slower than 500 ms against the 5% allowed: the budget is spent four times over
    assert targets["p95_response_seconds"]["error_budget_remaining"] == -3.0
    assert targets["average_response_seconds"]["error_budget_remaining"] is None
    http = otelkit_capture.histogram("http_request_duration_seconds", handler="/scripted/{name}")
    assert targets["average_response_seconds"]["value"] == round(http.sum / http.count, 9)
    assert targets["average_response_seconds"]["compliant"] is True

    def every_window(value: float) -> dict[str, float]:
        return dict.fromkeys(("1h", "1d", "7d", "30d"), round(value, 9))

    api, down = uptime["checks"]["api"], uptime["checks"]["down"]
    assert (api["up"], api["uptime"], api["error_rate"]) == (True, every_window(0.6), every_window(0.4))
    assert (down["up"], down["uptime"], down["error_rate"]) == (False, every_window(0.0), every_window(1.0))
    # the runs' latency per check: the same histogram the metrics export, so the same mean and P95
    assert api["average_response_seconds"] == every_window(durations.sum / durations.count)
    cumulative = list(durations.buckets.values())
    per_bucket = [cumulative[0]] + [high - low for low, high in itertools.pairwise(cumulative)]
    p95 = bucket_quantile(0.95, DEFAULT_BUCKETS, [int(count) for count in per_bucket])
    assert api["p95_response_seconds"] == every_window(p95)
    assert (uptime["uptime"]["1h"], uptime["error_rate"]["1h"]) == (0.3, 0.7)  # 6 of 20 runs passed

    # Incidents, exactly from the runs' own start times: api failed in runs 2, 4, 6 and 8, and each was
    # followed by a passing run; down never passed.
    started = {
        check: [next(r for r in run if r.check == check).started_at for run in runs] for check in ("api", "down")
    }
    failed_runs = [index for index, behaviour in enumerate(SCHEDULE) if behaviour != "ok"]
    expected_api = [
        {
            "check": "api",
            "start": iso(started["api"][index]),
            "end": iso(started["api"][index + 1]),
            "duration_seconds": round(started["api"][index + 1] - started["api"][index], 3),
            "ongoing": False,
        }
        for index in failed_runs
    ]
    assert [incident for incident in uptime["incidents"] if incident["check"] == "api"] == expected_api
    (down_incident,) = [incident for incident in uptime["incidents"] if incident["check"] == "down"]
    assert (down_incident["start"], down_incident["end"], down_incident["ongoing"]) == (
        iso(started["down"][0]),
        None,
        True,
    )
    generated = datetime.fromisoformat(uptime["generated_at"]).timestamp()
    assert down_incident["duration_seconds"] == pytest.approx(generated - started["down"][0], abs=0.002)


def test_each_run_is_a_span_tree_that_the_service_joins(otelkit_capture: MetricsCapture) -> None:
    target = Target({"api": ["ok", "error"]}, **QUIET)
    with serve(target.app) as base_url:
        runner = SyntheticRunner([api_check(base_url)])
        asyncio.run(runner.run_once())
        asyncio.run(runner.run_once())
        wait_until(lambda: len([s for s in otelkit_capture.spans if s["kind"] == "SERVER"]) == 2, "server spans")
    spans = otelkit_capture.spans
    checks = [span for span in spans if span["name"] == "synthetic api"]
    assert [(span["attributes"]["synthetic.check.result"], span["status"]) for span in checks] == [
        ("success", "UNSET"),
        ("failure", "ERROR"),
    ]
    for check in checks:
        (request,) = [span for span in spans if span["parent_span_id"] == check["span_id"]]
        assert (request["name"], request["kind"]) == ("GET", "CLIENT")
        assert request["attributes"]["url.full"] == f"{base_url}/scripted/api"
        (server,) = [span for span in spans if span["kind"] == "SERVER" and span["trace_id"] == check["trace_id"]]
        assert server["parent_span_id"] == request["span_id"]  # traceparent went with the request
    assert checks[1]["attributes"].get("synthetic.check.result") == "failure"


def test_the_duration_exemplar_links_to_the_check_runs_trace() -> None:
    """The runner records a result after its span has ended; the exemplar must still carry that trace."""
    sink = OtlpSink()
    server, port = start_grpc_sink(sink)
    try:
        otlp = {"endpoint": f"http://127.0.0.1:{port}", "export_interval_seconds": 60}
        target = Target(otlp=otlp, prometheus={"enabled": False}, **QUIET)
        with serve(target.app) as base_url:
            asyncio.run(SyntheticRunner([api_check(base_url)]).run_once())
        target.handle.shutdown()
        assert sink.wait_for(lambda: sink.metric_requests and sink.trace_requests)
    finally:
        server.stop(grace=None)
    (check_trace,) = {span.trace_id for span in sink.spans() if span.name == "synthetic api"}
    (point,) = sink.metrics()["synthetic_check_duration_seconds"][-1].histogram.data_points
    assert [exemplar.trace_id for exemplar in point.exemplars] == [check_trace]


def test_checks_past_the_cardinality_limit_fold_into_the_overflow_series_and_warn_once(
    otelkit_capture: MetricsCapture, caplog: pytest.LogCaptureFixture
) -> None:
    otelkit.init(metrics={"system_metrics": False, "cardinality_limit": 5})
    second = Check(name="second", url=f"http://127.0.0.1:{refused_port()}/health", timeout_seconds=1)
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        asyncio.run(SyntheticRunner([down_check(), second]).run_once())  # "down" declares all 5 series
        assert otelkit_capture.value("synthetic_checks_total", check="down", result="error") == 1
    assert otelkit_capture.value("synthetic_checks_total", otel_metric_overflow="true") == 1  # "second"'s run
    # the runner's counter and the pipeline's export scan share the handle's warner: one warning, not two
    assert caplog.text.count("synthetic_checks_total reached its cardinality limit of 5") == 1


@pytest.mark.parametrize("concurrency", [1, 2])
def test_run_forever_runs_each_check_at_its_interval_within_the_concurrency_bound(
    otelkit_capture: MetricsCapture, concurrency: int
) -> None:
    target = Target(**QUIET)
    results: list[str] = []
    with serve(target.app) as base_url:
        checks = [Check(name=f"gate-{n}", url=f"{base_url}/gate", interval_seconds=0.05, jitter=0.5) for n in range(4)]
        runner = SyntheticRunner(
            checks, concurrency=concurrency, on_result=lambda outcome: results.append(outcome.check)
        )
        asyncio.run(runner.run_forever(asyncio.Event(), runs=3))
    assert sorted(results) == sorted(f"gate-{n}" for n in range(4) for _ in range(3))
    assert target.max_in_flight == concurrency
    assert otelkit_capture.total("synthetic_checks_total", result="success") == 12


def test_a_failing_callback_or_run_stays_with_its_check_and_is_logged_once(
    otelkit_capture: MetricsCapture, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otelkit.synthetic import runner as runner_module

    real_run_check = runner_module.run_check

    async def run_check_with_a_bug(check: Check, client: httpx.AsyncClient, tracer: object) -> object:
        if check.name == "buggy":
            raise RuntimeError("a bug in the runner")
        return await real_run_check(check, client, tracer)

    monkeypatch.setattr(runner_module, "run_check", run_check_with_a_bug)
    target = Target(**QUIET)
    seen: list[str] = []

    def callback_that_fails_for_gate_0(outcome: object) -> None:
        seen.append(outcome.check)
        if outcome.check == "gate-0":
            raise ValueError("a bad callback")

    with serve(target.app) as base_url, caplog.at_level(logging.ERROR, logger="otelkit"):
        names = ["gate-0", "gate-1", "buggy"]
        checks = [Check(name=name, url=f"{base_url}/gate", interval_seconds=0.05, jitter=0) for name in names]
        runner = SyntheticRunner(checks, on_result=callback_that_fails_for_gate_0)
        asyncio.run(runner.run_forever(asyncio.Event(), runs=3))
    assert sorted(seen) == sorted(name for name in names for _ in range(3))
    assert otelkit_capture.value("synthetic_checks_total", check="gate-0", result="success") == 3
    assert otelkit_capture.value("synthetic_checks_total", check="gate-1", result="success") == 3
    assert otelkit_capture.value("synthetic_checks_total", check="buggy", result="error") == 3
    assert caplog.text.count("synthetic check buggy failed to run") == 1
    assert caplog.text.count("a synthetic result callback") == 1


def test_run_forever_stops_when_told(otelkit_capture: MetricsCapture) -> None:
    target = Target(**QUIET)
    with serve(target.app) as base_url:
        checks = [Check(name="slow-interval", url=f"{base_url}/gate", interval_seconds=3600, jitter=0)]

        async def run_then_stop() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(SyntheticRunner(checks).run_forever(stop))
            while otelkit_capture.total("synthetic_checks_total") < 1:
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, 10)  # would wait an hour for the next run if stop were ignored

        asyncio.run(run_then_stop())
    assert otelkit_capture.value("synthetic_checks_total", check="slow-interval", result="success") == 1


def test_jitter_spreads_runs_within_the_configured_share_of_the_interval() -> None:
    rng = random.Random(7)
    delays = [next_delay(10, 0.2, rng) for _ in range(2000)]
    assert 8 <= min(delays) < 8.1 and 11.9 < max(delays) <= 12  # 10 s ± 20%, both ends reached
    firsts = [first_delay(10, 0.2, rng) for _ in range(2000)]
    assert 0 <= min(firsts) < 0.05 and 1.95 < max(firsts) <= 2  # first runs spread over 20% of the interval
    assert (next_delay(10, 0, rng), first_delay(10, 0, rng)) == (10, 0)
