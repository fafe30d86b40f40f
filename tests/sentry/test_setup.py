"""When Sentry starts, with what, and what it leaves alone (no requests served here)."""

from __future__ import annotations

import logging

import pytest
import sentry_sdk
from opentelemetry import propagate
from sentry_sdk.tracing import NoOpSpan

import otelkit
from otelkit import OtelkitConfigError
from otelkit.sentry.client import environment_of, release_of
from otelkit.sentry.sampling import check_one_ratio, trace_sample_ratio
from otelkit.settings import OtelkitSettings
from otelkit.testing import MetricsCapture
from tests.support.sentry_ingest import SentryIngest

QUIET = {"prometheus": {"enabled": False}, "metrics": {"system_metrics": False}}


def test_sentry_starts_only_when_enabled_with_a_dsn(ingest: SentryIngest) -> None:
    handle = otelkit.init(**QUIET)
    assert not sentry_sdk.get_client().is_active()
    handle.shutdown()
    handle = otelkit.init(sentry={"dsn": ingest.dsn, "enabled": False}, **QUIET)
    assert not sentry_sdk.get_client().is_active()
    handle.shutdown()
    handle = otelkit.init(sentry={"dsn": ingest.dsn}, **QUIET)
    assert sentry_sdk.get_client().is_active()
    assert sentry_sdk.get_client().dsn == ingest.dsn


@pytest.mark.parametrize("dsn", ["https://k3y-s3cret@sentry.example/42/", "https://k3y-s3cret@sentry.example:port/42"])
def test_a_dsn_sentry_cannot_use_names_the_setting_and_hides_the_key(dsn: str) -> None:
    with pytest.raises(
        OtelkitConfigError, match=r"sentry\.dsn \(argument .*variable OTELKIT_SENTRY__DSN\) = <redacted>"
    ) as info:
        otelkit.init(sentry={"dsn": dsn}, **QUIET)
    assert "k3y-s3cret" not in str(info.value)
    assert not sentry_sdk.get_client().is_active()


def test_a_bad_dsn_is_traced_to_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable when it set the DSN; the argument when the argument overrode a good variable."""
    bad = "https://k3y-s3cret@sentry.example:port/42"
    monkeypatch.setenv("OTELKIT_SENTRY__DSN", bad)
    with pytest.raises(OtelkitConfigError, match=r"sentry\.dsn \(OTELKIT_SENTRY__DSN\) = <redacted>"):
        otelkit.init(**QUIET)
    monkeypatch.setenv("OTELKIT_SENTRY__DSN", "https://good@sentry.example/42")
    with pytest.raises(OtelkitConfigError, match=r"sentry\.dsn \(argument .*\) = <redacted>"):
        otelkit.init(sentry={"dsn": bad}, **QUIET)
    assert not sentry_sdk.get_client().is_active()


def test_release_is_the_service_version_unless_the_build_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = OtelkitSettings(service={"name": "checkout", "version": "1.4.2", "environment": "staging"})
    assert release_of(settings) == "checkout@1.4.2"
    monkeypatch.setenv("SENTRY_RELEASE", "checkout@1.4.2+9f2c1a")
    assert release_of(settings) == "checkout@1.4.2+9f2c1a"
    assert environment_of(settings) == "staging"
    assert environment_of(OtelkitSettings(service={"environment": "staging"}, sentry={"environment": "eu"})) == "eu"


def test_the_sentry_rate_is_the_one_sampler_ratio_while_spans_go_to_sentry() -> None:
    both = OtelkitSettings(sentry={"traces_sample_rate": 0.25})
    assert trace_sample_ratio(both, sentry_started=True) == 0.25
    assert trace_sample_ratio(both, sentry_started=False) == 1.0  # no Sentry: tracing.sample_ratio
    no_spans = OtelkitSettings(sentry={"traces_sample_rate": 0.25, "enable_tracing": False})
    assert trace_sample_ratio(no_spans, sentry_started=True) == 1.0
    check_one_ratio(OtelkitSettings(tracing={"sample_ratio": 0.25}, sentry={"traces_sample_rate": 0.25}))


def test_the_tracer_provider_samples_at_the_sentry_rate(ingest: SentryIngest) -> None:
    handle = otelkit.init(sentry={"dsn": ingest.dsn, "traces_sample_rate": 0.25}, **QUIET)
    assert "TraceIdRatioBased{0.25}" in handle.tracer_provider.sampler.get_description()


def test_two_different_ratios_are_refused(ingest: SentryIngest) -> None:
    with pytest.raises(
        OtelkitConfigError, match=r"OTELKIT_TRACING__SAMPLE_RATIO\) = 0\.5 disagrees with .*OTELKIT_SENTRY__TRACES"
    ):
        otelkit.init(tracing={"sample_ratio": 0.5}, sentry={"dsn": ingest.dsn, "traces_sample_rate": 0.2}, **QUIET)
    assert not sentry_sdk.get_client().is_active()


def test_sentry_builds_no_spans_and_patches_no_framework(ingest: SentryIngest) -> None:
    otelkit.init(sentry={"dsn": ingest.dsn, "traces_sample_rate": 1.0}, **QUIET)
    client = sentry_sdk.get_client()
    assert set(client.integrations) == {"atexit", "dedupe", "excepthook", "logging", "otlp"}
    assert client.options["traces_sample_rate"] is None
    with sentry_sdk.start_transaction(name="native") as transaction, sentry_sdk.start_span(op="db") as span:
        assert isinstance(transaction, NoOpSpan) and isinstance(span, NoOpSpan)  # nothing built, nothing sent


def test_the_global_propagator_stays_w3c(ingest: SentryIngest) -> None:
    before = propagate.get_global_textmap()
    otelkit.init(sentry={"dsn": ingest.dsn}, **QUIET)
    assert propagate.get_global_textmap() is before
    assert "traceparent" in before.fields


def test_shutdown_closes_the_client(ingest: SentryIngest) -> None:
    handle = otelkit.init(sentry={"dsn": ingest.dsn}, **QUIET)
    handle.shutdown()
    assert not sentry_sdk.get_client().is_active()
    assert "service" not in sentry_sdk.get_global_scope()._tags


def test_the_pytest_capture_keeps_sentry_off(otelkit_capture: MetricsCapture, ingest: SentryIngest) -> None:
    otelkit.init(sentry={"dsn": ingest.dsn})
    assert not sentry_sdk.get_client().is_active()


def test_a_client_the_application_started_is_left_alone(ingest: SentryIngest, caplog: pytest.LogCaptureFixture) -> None:
    sentry_sdk.init(dsn=ingest.dsn, default_integrations=False)
    try:
        mine = sentry_sdk.get_client()
        with caplog.at_level(logging.WARNING, logger="otelkit"):
            otelkit.init(sentry={"dsn": ingest.dsn, "environment": "otelkit"}, **QUIET)
        assert sentry_sdk.get_client() is mine
        assert mine.options["environment"] != "otelkit"
        assert "already called by the application" in caplog.text
    finally:
        mine.close(timeout=0)
        sentry_sdk.get_global_scope().set_client(None)


def test_helpers_do_nothing_while_sentry_is_off() -> None:
    otelkit.init(**QUIET)
    otelkit.add_breadcrumb("nobody hears this")
    otelkit.set_user({"id": "u-1"})
    assert sentry_sdk.get_isolation_scope()._user is None
    assert not any(
        crumb.get("message") == "nobody hears this" for crumb in sentry_sdk.get_isolation_scope()._breadcrumbs
    )
