from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import otelkit
from otelkit.testing import MetricsCapture


@pytest.fixture
def capture(otelkit_capture: MetricsCapture) -> MetricsCapture:
    otelkit.init(metrics={"system_metrics": False})
    return otelkit_capture


def test_generation_outcomes_come_from_the_exception(capture: MetricsCapture) -> None:
    with otelkit.track_generation("sdxl"):
        pass
    with pytest.raises(TimeoutError), otelkit.track_generation("sdxl"):
        raise TimeoutError
    with pytest.raises(ValueError), otelkit.track_generation("sdxl"):
        raise ValueError("bad prompt")
    with otelkit.track_generation("llm") as generation:
        generation.set_status("failure")
    assert capture.value("generation_requests_total", model_type="sdxl", status="success") == 1
    assert capture.value("generation_requests_total", model_type="sdxl", status="timeout") == 1
    assert capture.value("generation_requests_total", model_type="sdxl", status="failure") == 1
    assert capture.value("generation_requests_total", model_type="llm", status="failure") == 1
    assert capture.value("active_generations", model_type="sdxl") == 0
    assert capture.histogram("generation_duration_seconds", model_type="sdxl", status="timeout").count == 1


def test_active_generations_counts_what_is_in_flight(capture: MetricsCapture) -> None:
    with otelkit.track_generation("sdxl"), otelkit.track_generation("sdxl"):
        assert capture.value("active_generations", model_type="sdxl") == 2
    assert capture.value("active_generations", model_type="sdxl") == 0


def test_decorator_tracks_each_call_of_sync_and_async_functions(capture: MetricsCapture) -> None:
    @otelkit.track_generation("llm")
    def generate(fail: bool) -> str:
        if fail:
            raise RuntimeError("model crashed")
        return "ok"

    @otelkit.track_generation("llm")
    async def generate_async(delay: float) -> str:
        await asyncio.sleep(delay)
        return "ok"

    assert generate(False) == "ok"
    with pytest.raises(RuntimeError):
        generate(True)

    async def run_two() -> list[str]:
        return await asyncio.gather(generate_async(0.03), generate_async(0.03))

    assert asyncio.run(run_two()) == ["ok", "ok"]
    assert capture.value("generation_requests_total", model_type="llm", status="success") == 3
    assert capture.value("generation_requests_total", model_type="llm", status="failure") == 1
    durations = capture.histogram("generation_duration_seconds", model_type="llm", status="success")
    assert durations.count == 3
    assert 0.06 <= durations.sum < 1.0  # the two async calls each slept 30 ms, concurrently tracked
    assert durations.buckets[0.025] == 1 and durations.buckets[0.05] == 3


def test_async_context_manager(capture: MetricsCapture) -> None:
    async def run() -> None:
        async with otelkit.track_generation("tts"):
            await asyncio.sleep(0)

    asyncio.run(run())
    assert capture.value("generation_requests_total", model_type="tts", status="success") == 1


def test_payments_count_requests_and_add_successful_amounts(capture: MetricsCapture) -> None:
    otelkit.record_payment("stripe", "success", 19.99, "EUR")
    otelkit.record_payment("stripe", "success", 5.01, "EUR")
    otelkit.record_payment("stripe", "failure", 100.0, "EUR")
    otelkit.record_payment("paypal", "success", 7, "USD")
    assert capture.value("payment_requests_total", provider="stripe", status="success") == 2
    assert capture.value("payment_requests_total", provider="stripe", status="failure") == 1
    assert capture.value("payment_amount_total", provider="stripe", currency="EUR") == pytest.approx(25.0)
    assert capture.value("payment_amount_total", provider="paypal", currency="USD") == 7


def test_a_negative_amount_is_ignored_with_a_warning(capture: MetricsCapture, caplog: pytest.LogCaptureFixture) -> None:
    otelkit.record_payment("stripe", "success", 10, "EUR")
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        otelkit.record_payment("stripe", "success", -3, "EUR")
    assert capture.value("payment_amount_total", provider="stripe", currency="EUR") == 10
    assert "cannot decrease" in caplog.text


def test_registrations_by_source(capture: MetricsCapture) -> None:
    for source in ["ads", "ads", "organic"]:
        otelkit.record_registration(source)
    assert capture.value("user_registrations_total", source="ads") == 2
    assert capture.total("user_registrations_total") == 3


def test_observable_gauges_read_callbacks_at_collection(capture: MetricsCapture) -> None:
    depth = {"emails": 3, "renders": 0}
    otelkit.observe_queue_depth(lambda: depth)
    otelkit.observe_active_users(lambda: {"1d": 10, "7d": 42})
    assert capture.value("queue_depth", queue="emails") == 3
    depth["emails"] = 9
    assert capture.value("queue_depth", queue="emails") == 9
    assert capture.value("active_users", timeframe="7d") == 42


def test_a_failing_callback_is_logged_once_and_does_not_hide_others(
    capture: MetricsCapture, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> dict[str, float]:
        raise ConnectionError("queue broker unreachable")

    otelkit.observe_queue_depth(broken)
    otelkit.observe_queue_depth(lambda: {"emails": 1})
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        for _ in range(3):
            assert capture.value("queue_depth", queue="emails") == 1
    assert caplog.text.count("queue_depth callback") == 1


def test_label_values_beyond_the_cardinality_limit_fold_into_one_overflow_series(
    otelkit_capture: MetricsCapture, caplog: pytest.LogCaptureFixture
) -> None:
    otelkit.init(metrics={"system_metrics": False, "cardinality_limit": 5})
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        for i in range(50):
            otelkit.record_registration(f"campaign-{i}")
    series = otelkit_capture.series("user_registrations_total")
    assert len(series) == 6
    assert otelkit_capture.value("user_registrations_total", otel_metric_overflow="true") == 45
    assert otelkit_capture.total("user_registrations_total") == 50
    assert caplog.text.count("reached its cardinality limit of 5") == 1


def test_bound_histogram_overflow_folds_into_one_series_and_warns_once(
    otelkit_capture: MetricsCapture, caplog: pytest.LogCaptureFixture
) -> None:
    otelkit.init(metrics={"system_metrics": False, "cardinality_limit": 3})
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        for i in range(10):
            with otelkit.track_generation(f"model-{i}"):
                pass
        otelkit_capture.samples()
        otelkit_capture.samples()
    assert otelkit_capture.histogram("generation_duration_seconds", otel_metric_overflow="true").count == 7
    assert caplog.text.count("generation_duration_seconds reached its cardinality limit") == 1


def test_sdk_instruments_overflow_through_the_sdk_limit_and_warn_once(
    otelkit_capture: MetricsCapture, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's own instruments on ``handle.meter`` go through the SDK's aggregation, not otelkit's cells."""
    handle = otelkit.init(metrics={"system_metrics": False, "cardinality_limit": 3})
    renders = handle.meter.create_histogram("render_duration", unit="s")
    widgets = handle.meter.create_counter("widgets")
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        for i in range(10):
            renders.record(0.2, {"template": f"t{i}"})
            widgets.add(1, {"kind": f"k{i}"})
        otelkit_capture.samples()
        otelkit_capture.samples()
    overflow = otelkit_capture.histogram("render_duration_seconds", otel_metric_overflow="true")
    assert overflow.count == 7 and overflow.buckets[0.25] == 7
    assert len(otelkit_capture.series("render_duration_seconds_count")) == 4
    assert otelkit_capture.value("widgets_total", otel_metric_overflow="true") == 7
    assert otelkit_capture.total("widgets_total") == 10
    assert caplog.text.count("metric render_duration reached its cardinality limit of 3") == 1
    assert caplog.text.count("metric widgets reached its cardinality limit of 3") == 1


def test_counters_are_exact_under_threads(capture: MetricsCapture) -> None:
    def register() -> None:
        for _ in range(5000):
            otelkit.record_registration("threads")

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert capture.value("user_registrations_total", source="threads") == 40000


def test_unhashable_label_values_are_recorded_not_raised(capture: MetricsCapture) -> None:
    otelkit.record_registration(["not", "a", "string"])  # type: ignore[arg-type]
    assert capture.value("user_registrations_total", source="['not', 'a', 'string']") == 1


def test_helpers_before_init_record_nowhere_and_warn_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import otelkit.instruments as helpers

    monkeypatch.setattr(helpers, "_detached", None)
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        otelkit.record_payment("stripe", "success", 1, "EUR")
        with otelkit.track_generation("sdxl"):
            pass
    assert caplog.text.count("before otelkit.init()") == 1


@otelkit.track_generation("imported")
def generate_at_import() -> str:
    """Decorated when this module was imported, long before any init()."""
    return "image"


def test_a_decorator_applied_before_init_records_into_the_handle_live_at_each_call(
    otelkit_capture: MetricsCapture,
) -> None:
    @otelkit.track_generation("async-early")
    async def generate_async() -> None:
        await asyncio.sleep(0)

    early_tracker = otelkit.track_generation("tracker-early")
    handle = otelkit.init(metrics={"system_metrics": False})
    assert generate_at_import() == "image"
    asyncio.run(generate_async())
    with early_tracker:
        pass
    assert otelkit_capture.value("generation_requests_total", model_type="imported", status="success") == 1
    assert otelkit_capture.value("generation_requests_total", model_type="async-early", status="success") == 1
    assert otelkit_capture.value("generation_requests_total", model_type="tracker-early", status="success") == 1
    assert otelkit_capture.histogram("generation_duration_seconds", model_type="imported").count == 1

    handle.shutdown()
    otelkit.init(metrics={"system_metrics": False})  # a new handle: the same helpers follow it
    generate_at_import()
    generate_at_import()
    assert otelkit_capture.value("generation_requests_total", model_type="imported", status="success") == 2
    assert otelkit_capture.value("active_generations", model_type="imported") == 0


def test_callbacks_registered_before_init_are_read_by_every_later_handle(otelkit_capture: MetricsCapture) -> None:
    depth = {"emails": 3}
    unregister = otelkit.observe_queue_depth(lambda: depth)
    otelkit.observe_active_users(lambda: {"1d": 5})
    handle = otelkit.init(metrics={"system_metrics": False})
    assert otelkit_capture.value("queue_depth", queue="emails") == 3
    handle.shutdown()
    depth["emails"] = 7
    otelkit.init(metrics={"system_metrics": False})
    assert otelkit_capture.value("queue_depth", queue="emails") == 7
    assert otelkit_capture.value("active_users", timeframe="1d") == 5
    unregister()
    otelkit_capture.assert_absent("queue_depth")


def test_registering_the_same_callback_twice_reports_it_once(capture: MetricsCapture) -> None:
    def depth() -> dict[str, float]:
        return {"emails": 2}

    otelkit.observe_queue_depth(depth)
    otelkit.observe_queue_depth(depth)
    assert capture.value("queue_depth", queue="emails") == 2


def test_a_handle_callback_stays_with_its_handle(otelkit_capture: MetricsCapture) -> None:
    first = otelkit.init(metrics={"system_metrics": False})
    first.business.observe_queue_depth(lambda: {"first-only": 1})
    assert otelkit_capture.value("queue_depth", queue="first-only") == 1
    first.shutdown()
    otelkit.init(metrics={"system_metrics": False})
    otelkit_capture.assert_absent("queue_depth", queue="first-only")
