from __future__ import annotations

from pathlib import Path

import pytest

from otelkit import OtelkitConfigError, OtelkitSettings, PrometheusSettings, SentryPrivacySettings, SentrySettings
from otelkit._internal.config import load_settings

SPEC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def test_prometheus_section_has_exactly_the_spec_fields_and_defaults() -> None:
    assert list(PrometheusSettings.model_fields) == ["enabled", "metrics_path", "excluded_handlers", "default_buckets"]
    assert PrometheusSettings().model_dump() == {
        "enabled": True,
        "metrics_path": "/metrics",
        "excluded_handlers": ["/metrics", "/health", "/docs", "/redoc"],
        "default_buckets": SPEC_BUCKETS,
    }


def test_sentry_section_has_exactly_the_spec_fields_and_defaults() -> None:
    assert list(SentrySettings.model_fields) == [
        "enabled",
        "dsn",
        "environment",
        "sample_rate",
        "enable_tracing",
        "traces_sample_rate",
    ]
    assert SentrySettings().model_dump() == {
        "enabled": True,
        "dsn": None,
        "environment": None,
        "sample_rate": 1.0,
        "enable_tracing": True,
        "traces_sample_rate": 0.1,
    }


def test_nested_variables_use_the_documented_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_SERVICE__NAME", "checkout")
    monkeypatch.setenv("OTELKIT_PROMETHEUS__EXCLUDED_HANDLERS", '["/metrics"]')
    monkeypatch.setenv("OTELKIT_SENTRY__TRACES_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("OTELKIT_OTLP__HEADERS", "api-key=k1,tenant=t2")
    settings = OtelkitSettings()
    assert settings.service.name == "checkout"
    assert settings.prometheus.excluded_handlers == ["/metrics"]
    assert settings.sentry.traces_sample_rate == 0.25
    assert {k: v.get_secret_value() for k, v in settings.otlp.headers.items()} == {
        "api-key": "k1",
        "tenant": "t2",
    }


def test_standard_otel_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=3.1.0,deployment.environment=staging,team=pay")
    settings = OtelkitSettings()
    assert settings.service.name == "billing"
    assert settings.service.version == "3.1.0"
    assert settings.service.environment == "staging"
    assert settings.otlp.endpoint == "http://127.0.0.1:4317"
    assert settings.otlp.protocol == "http/protobuf"
    assert settings.otlp.timeout_seconds == 2.5


def test_otelkit_variables_and_arguments_win_over_standard_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel")
    monkeypatch.setenv("OTELKIT_SERVICE__NAME", "from-otelkit")
    monkeypatch.setenv("OTELKIT_SERVICE__VERSION", "2.0")
    assert OtelkitSettings().service.name == "from-otelkit"
    merged = load_settings(None, {"service": {"name": "from-argument"}})
    assert (merged.service.name, merged.service.version) == ("from-argument", "2.0")


def test_secrets_are_read_from_the_secrets_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sentry_dsn").write_text("https://abc123@sentry.example/42\n")
    (tmp_path / "otlp_headers").write_text("authorization=Bearer s3cret")
    monkeypatch.setenv("OTELKIT_SECRETS_DIR", str(tmp_path))
    settings = OtelkitSettings()
    assert settings.sentry.dsn is not None
    assert settings.sentry.dsn.get_secret_value() == "https://abc123@sentry.example/42"
    assert settings.otlp.headers["authorization"].get_secret_value() == "Bearer s3cret"
    assert "s3cret" not in repr(settings) and "abc123" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OTELKIT_SENTRY__SAMPLE_RATE",
            "1.5",
            r"sentry\.sample_rate \(OTELKIT_SENTRY__SAMPLE_RATE\) = '1\.5': "
            r"Input should be less than or equal to 1",
        ),
        (
            "OTELKIT_PROMETHEUS__DEFAULT_BUCKETS",
            "[0.1, 0.05, 0.5]",
            r"\(OTELKIT_PROMETHEUS__DEFAULT_BUCKETS\) = '\[0\.1, 0\.05, 0\.5\]': "
            r"boundaries must be strictly ascending",
        ),
        (
            "OTELKIT_PROMETHEUS__DEFAULT_BUCKETS",
            "0.1,0.05,0.5",
            r"\(OTELKIT_PROMETHEUS__DEFAULT_BUCKETS\) = '0\.1,0\.05,0\.5': boundaries must be strictly ascending",
        ),
        (
            "OTELKIT_PROMETHEUS__DEFAULT_BUCKETS",
            "0.1,fast,0.5",
            r"prometheus\.default_buckets\.1 \(OTELKIT_PROMETHEUS__DEFAULT_BUCKETS\) = '0\.1,fast,0\.5': "
            r"Input should be a valid number",
        ),
        (
            "OTELKIT_PROMETHEUS__DEFAULT_BUCKETS",
            "[0.1, 0.5",
            r"OTELKIT_PROMETHEUS__DEFAULT_BUCKETS='\[0\.1, 0\.5': expected a JSON array or comma-separated items",
        ),
        ("OTELKIT_SERVICE", "{bad", r"OTELKIT_SERVICE='\{bad': expected a JSON object"),
        (
            "OTELKIT_SERVICE",
            '{"name": ""}',
            r"service\.name \(OTELKIT_SERVICE, field 'name'\) = '\"\"': String should have at least 1 character",
        ),
        (
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "-5",
            r"otlp\.timeout_seconds \(OTEL_EXPORTER_OTLP_TIMEOUT\) = '-5': Input should be greater than 0",
        ),
        (
            "OTELKIT_PROMETHEUS__DEFAULT_BUCKETS",
            "[0.1, 0.25, 1.0]",
            r"must contain 0\.5: the SLA's P95",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "collector:4317",
            r"otlp\.endpoint \(OTEL_EXPORTER_OTLP_ENDPOINT\) = 'collector:4317': "
            r"must be an http:// or https:// URL",
        ),
        (
            "OTELKIT_PROMETHEUS__METRICS_PATH",
            "metrics",
            r"prometheus\.metrics_path .* = 'metrics': must start with '/'",
        ),
        ("OTELKIT_OTLP__PROTOCOL", "thrift", r"otlp\.protocol .* = 'thrift'"),
    ],
)
def test_bad_values_name_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(OtelkitConfigError, match=message):
        load_settings(None, {})


def test_a_malformed_dsn_is_rejected_without_printing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_SENTRY__DSN", "https://sentry.example/secretkey-no-at-sign")
    with pytest.raises(OtelkitConfigError, match=r"sentry\.dsn \(OTELKIT_SENTRY__DSN\) = <redacted>") as info:
        load_settings(None, {})
    assert "secretkey" not in str(info.value)


def test_every_error_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_SENTRY__SAMPLE_RATE", "2")
    monkeypatch.setenv("OTELKIT_TRACING__SAMPLE_RATIO", "-1")
    with pytest.raises(OtelkitConfigError, match="2 invalid settings") as info:
        load_settings(None, {})
    assert "OTELKIT_TRACING__SAMPLE_RATIO" in str(info.value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"tracing\.sample_ratio"):
        load_settings(None, {"tracing": {"sample_ratio": 1.5}})


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(OtelkitConfigError, match=r"service\.nmae .*Extra inputs are not permitted"):
        load_settings(None, {"service": {"nmae": "typo"}})


def test_list_variables_may_be_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_PROMETHEUS__DEFAULT_BUCKETS", "0.1, 0.5,2.5")
    monkeypatch.setenv("OTELKIT_PROMETHEUS__EXCLUDED_HANDLERS", "/metrics")
    settings = load_settings(None, {})
    assert settings.prometheus.default_buckets == [0.1, 0.5, 2.5]
    assert settings.prometheus.excluded_handlers == ["/metrics"]
    assert PrometheusSettings().default_buckets == [0.1, 0.5, 2.5]  # the section read on its own agrees


def test_an_argument_is_reported_as_an_argument_even_when_a_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_TRACING__SAMPLE_RATIO", "0.5")
    with pytest.raises(OtelkitConfigError, match=r"tracing\.sample_ratio \(argument to otelkit\.init\(\).*\) = 1\.5:"):
        load_settings(None, {"tracing": {"sample_ratio": 1.5}})


def test_the_error_names_only_the_variable_actually_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_OTLP__TIMEOUT_SECONDS", "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")  # valid, and below OTELKIT_ in precedence
    with pytest.raises(OtelkitConfigError) as info:
        load_settings(None, {})
    assert "(OTELKIT_OTLP__TIMEOUT_SECONDS) = '0'" in str(info.value)
    assert "OTEL_EXPORTER_OTLP_TIMEOUT" not in str(info.value)


def test_a_bad_secret_file_is_named_without_its_content(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sentry_dsn").write_text("https://topsecret.example/1")
    monkeypatch.setenv("OTELKIT_SECRETS_DIR", str(tmp_path))
    with pytest.raises(OtelkitConfigError, match=r"sentry\.dsn \(file 'sentry_dsn' in OTELKIT_SECRETS_DIR") as info:
        load_settings(None, {})
    assert "topsecret" not in str(info.value)


def test_sentry_privacy_options_are_a_section_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_SENTRY_PRIVACY__SEND_DEFAULT_PII", "true")
    monkeypatch.setenv("OTELKIT_SENTRY_PRIVACY__SCRUB_FIELDS", '["^iban$", "pin"]')
    settings = load_settings(None, {})
    assert settings.sentry_privacy == SentryPrivacySettings(send_default_pii=True, scrub_fields=["^iban$", "pin"])
    moved = (
        r"sentry\.scrub_fields .*Extra inputs are not permitted; "
        r"it moved to sentry_privacy\.scrub_fields \(OTELKIT_SENTRY_PRIVACY__SCRUB_FIELDS\)"
    )
    with pytest.raises(OtelkitConfigError, match=moved):
        load_settings(None, {"sentry": {"scrub_fields": ["x"]}})


def test_a_scrub_pattern_that_does_not_compile_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELKIT_SENTRY_PRIVACY__SCRUB_VALUES", "card,(unclosed")
    with pytest.raises(
        OtelkitConfigError, match=r"sentry_privacy\.scrub_values .* = 'card,\(unclosed': .*regular expression"
    ):
        load_settings(None, {})


def test_percent_encoded_headers_and_resource_attributes_are_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc,x-tenant=a%2Cb")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=1.0%2Bbuild%207,deployment.environment=eu%20west")
    settings = load_settings(None, {})
    assert {k: v.get_secret_value() for k, v in settings.otlp.headers.items()} == {
        "authorization": "Bearer abc",
        "x-tenant": "a,b",
    }
    assert (settings.service.version, settings.service.environment) == ("1.0+build 7", "eu west")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTELKIT_OTLP", '{"timeout_seconds": -5, "headers": {"authorization": "Bearer SUPERSECRET"}}'),
        ("OTELKIT_OTLP", '{"headers": {"authorization": "Bearer SUPERSECRET"}, "timeout_seconds": '),
        ("OTELKIT_SENTRY", '{"dsn": "https://SUPERSECRET@o1.ingest.sentry.io/1", "sample_rate": 5}'),
        ("OTELKIT_OTLP__HEADERS", "SUPERSECRET-without-a-value"),
    ],
)
def test_a_section_variable_that_holds_a_secret_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(OtelkitConfigError) as raised:
        load_settings(None, {})
    assert variable in str(raised.value)
    assert "SUPERSECRET" not in str(raised.value)


def test_a_resource_attribute_error_shows_only_that_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments,service.name=,region=eu")
    with pytest.raises(OtelkitConfigError, match=r"\(OTEL_RESOURCE_ATTRIBUTES, key 'service\.name'\) = ''") as raised:
        load_settings(None, {})
    assert "payments" not in str(raised.value)
