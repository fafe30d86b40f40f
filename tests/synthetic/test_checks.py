"""Check definitions: the checks file, its errors, secrets from env and files, multi-step checks."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelkit.errors import OtelkitConfigError
from otelkit.synthetic import SyntheticRunner, default_checks, load_checks
from otelkit.synthetic.jsonpath import PathNotFound, find
from otelkit.testing import MetricsCapture
from tests.support.asgi_server import serve
from tests.synthetic.target import TOKEN, Target

REPO = Path(__file__).resolve().parents[2]
QUIET = {"metrics": {"system_metrics": False}}


def write(tmp_path: Path, document: dict[str, Any], name: str = "checks.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if name.endswith(".yaml") else json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("check", "field", "shown"),
    [
        ({"name": "health", "url": "http://127.0.0.1/health", "expcet": {"status": 200}}, "expcet", "unknown field"),
        (
            {"name": "health", "url": "http://127.0.0.1/health", "interval_seconds": -5},
            "interval_seconds = -5",
            "greater than 0",
        ),
        ({"name": "health", "url": "htp:/127.0.0.1/health"}, "url = 'htp:/127.0.0.1/health'", "absolute http"),
        ({"name": "health", "url": "http://127.0.0.1:99999/"}, "url = 'http://127.0.0.1:99999/'", "invalid port"),
        (
            {"name": "health", "steps": [{"url": "http://h/a"}, {"url": "ftp://h/b"}]},
            "steps[1].url = 'ftp://h/b'",
            "absolute",
        ),
        ({"name": "health", "url": "http://h/a", "expect": {"status": 700}}, "expect.status", "not an HTTP status"),
        (
            {"name": "health", "url": "http://h/a", "expect": {"json": {"status": 1}}},
            "expect.json",
            "must start with '$'",
        ),
        (
            {"name": "health", "steps": [{"url": "http://h/items/${item_id}"}]},
            "(check)",
            "${item_id}, which no earlier step",
        ),
        ({"name": "has space", "url": "http://h/a"}, "name = 'has space'", "should match pattern"),
        ({"name": "health", "url": "http://exa mple.com/a"}, "url = 'http://exa mple.com/a'", "contains ' '"),
        ({"name": "health", "url": "http://127.0.0.1:1/a\x00b"}, "url = 'http://127.0.0.1:1/a\\x00b'", "contains"),
        ({"name": "health", "url": "http://ex!ample.com/a"}, "url = 'http://ex!ample.com/a'", "invalid host"),
        ({"name": "health", "url": "http://[::1/a"}, "url = 'http://[::1/a'", "Invalid IPv6 URL"),
    ],
    ids=[
        "unknown-field",
        "negative-interval",
        "invalid-url",
        "bad-port",
        "step-url",
        "status",
        "json-path",
        "variable",
        "name",
        "space-in-host",
        "control-character",
        "bad-host-character",
        "unclosed-ipv6",
    ],
)
def test_a_bad_check_fails_at_load_naming_file_check_field_and_value(
    tmp_path: Path, check: dict[str, Any], field: str, shown: str
) -> None:
    good = {"name": "docs", "url": "http://127.0.0.1/docs"}
    path = write(tmp_path, {"checks": [good, check]})
    with pytest.raises(OtelkitConfigError) as caught:
        load_checks(path)
    message = str(caught.value)
    assert message.startswith(f"checks file {path}: 1 error")
    assert f"check {check['name']!r}: field {field}" in message
    assert shown in message


def test_every_mistake_is_reported_at_once_and_header_values_stay_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "checks": [
                {"name": "a", "url": "http://h/a", "timeout_seconds": 0, "headers": {"Authorization": 5}},
                {"name": "a", "url": "http://h/b"},
                {"url": "http://h/c"},
            ],
            "extra": 1,
        },
        name="checks.json",
    )
    with pytest.raises(OtelkitConfigError) as caught:
        load_checks(path)
    message = str(caught.value)
    assert "5 errors" in message
    assert "unknown top-level field(s) ['extra']" in message
    assert "check 'a': field timeout_seconds = 0" in message
    assert "check 'a': field headers.Authorization = <redacted>" in message
    assert "check 'a': field name = 'a': another check already has this name" in message
    assert "check #3: field name: Field required" in message


def test_a_bad_default_is_reported_once_as_defaults_naming_the_checks_that_inherit_it(tmp_path: Path) -> None:
    document = {
        "defaults": {"interval_seconds": -5, "timeout_seconds": 2},
        "checks": [
            {"name": "inherits", "url": "http://h/a"},
            {"name": "own", "url": "http://h/b", "interval_seconds": 10},
            {"name": "also", "url": "http://h/c"},
        ],
    }
    with pytest.raises(OtelkitConfigError) as caught:
        load_checks(write(tmp_path, document))
    assert str(caught.value).splitlines()[1:] == [
        "  field defaults.interval_seconds = -5: Input should be greater than 0 "
        "(inherited by check(s) 'inherits', 'also')"
    ]


def test_a_bad_base_url_is_reported_once_as_base_url(tmp_path: Path) -> None:
    document = {"base_url": "ftp//x", "checks": [{"name": "a", "url": "/a"}, {"name": "b", "url": "/b"}]}
    with pytest.raises(OtelkitConfigError) as caught:
        load_checks(write(tmp_path, document))
    assert str(caught.value).splitlines()[1:] == [
        "  field base_url = 'ftp//x': must be an absolute http:// or https:// URL with a host"
    ]


@pytest.mark.parametrize("value", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_intervals_and_timeouts_must_be_finite(tmp_path: Path, value: float) -> None:
    checks = [{"name": "a", "url": "http://h/a", "interval_seconds": value}]
    with pytest.raises(OtelkitConfigError, match=r"check 'a': field interval_seconds = (inf|nan): .*finite number"):
        load_checks(write(tmp_path, {"checks": checks}, name="checks.json"))
    with pytest.raises(OtelkitConfigError, match=r"field defaults.timeout_seconds = (inf|nan): .*finite number"):
        load_checks(
            write(tmp_path, {"defaults": {"timeout_seconds": value}, "checks": [{"name": "b", "url": "http://h/b"}]})
        )


def test_no_secret_appears_in_a_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_SECRET", "SECRETVAL")
    monkeypatch.setenv("SYNTH_BASE", "ftp://probe:SECRETVAL@h")
    document = {
        "checks": [
            {"name": "query", "url": "htp://h/a?token=${env:SYNTH_SECRET}"},
            {"name": "path", "url": "http://h/${env:SYNTH_SECRET}/a b"},
            {"name": "literal", "url": "htp://probe:SECRETVAL@h/a?key=SECRETVAL&x=1"},
            {"name": "port", "url": "http://h:${env:SYNTH_SECRET}/"},
        ]
    }
    with pytest.raises(OtelkitConfigError) as caught:
        load_checks(write(tmp_path, document))
    message = str(caught.value)
    assert "SECRETVAL" not in message, message
    assert "check 'query': field url = 'htp://h/a?token=<redacted>'" in message
    assert "check 'path': field url = 'http://h/${env:SYNTH_SECRET}/a b': contains ' '" in message
    assert "check 'literal': field url = 'htp://probe:<redacted>@h/a?key=<redacted>&x=<redacted>'" in message
    assert "check 'port': field url = 'http://h:${env:SYNTH_SECRET}/': has an invalid port" in message
    with pytest.raises(OtelkitConfigError) as caught:
        load_checks(write(tmp_path, {"base_url": "${env:SYNTH_BASE}", "checks": [{"name": "a", "url": "/a"}]}))
    assert "SECRETVAL" not in str(caught.value)
    assert "field base_url = '${env:SYNTH_BASE}': must be an absolute" in str(caught.value)


def test_secrets_come_from_env_and_files_and_a_missing_one_fails_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    document = {
        "base_url": "${env:SYNTH_BASE}",
        "defaults": {"headers": {"X-Env": "Bearer ${env:SYNTH_TOKEN}"}, "interval_seconds": 15},
        "checks": [{"name": "private", "url": "/private", "headers": {"X-File": "${file:" + str(token_file) + "}"}}],
    }
    path = write(tmp_path, document)
    monkeypatch.setenv("SYNTH_BASE", "http://127.0.0.1:8000")
    with pytest.raises(OtelkitConfigError, match=r"defaults.headers: environment variable SYNTH_TOKEN .* is not set"):
        load_checks(path)
    monkeypatch.setenv("SYNTH_TOKEN", "t0ken")
    (check,) = load_checks(path)
    step = check.steps[0]
    assert step.url == "http://127.0.0.1:8000/private"
    assert step.headers == {"X-Env": "Bearer t0ken", "X-File": "from-a-file"}  # the trailing newline is dropped
    assert check.interval_seconds == 15
    token_file.unlink()
    with pytest.raises(OtelkitConfigError, match=r"check 'private': cannot read \$\{file:.*token\}"):
        load_checks(path)


def multi_step(expected_name: str) -> dict[str, Any]:
    return {
        "name": "item-roundtrip",
        "steps": [
            {
                "name": "create",
                "method": "POST",
                "url": "/items",
                "headers": {"Authorization": "Bearer ${env:SYNTH_TOKEN}"},
                "json": {"name": "probe"},
                "expect": {"status": 201},
                "extract": {"item_id": "$.id"},
            },
            {
                "name": "fetch",
                "url": "/items/${item_id}",
                "headers": {"Authorization": "Bearer ${env:SYNTH_TOKEN}"},
                "expect": {"json": {"$.name": expected_name, "$.id": "${item_id}"}},
            },
        ],
    }


def test_a_multi_step_check_shares_variables_between_steps(
    otelkit_capture: MetricsCapture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_TOKEN", TOKEN)
    target = Target(**QUIET)
    with serve(target.app) as base_url:
        path = write(tmp_path, {"base_url": base_url, "checks": [multi_step("probe")]})
        (outcome,) = asyncio.run(SyntheticRunner(load_checks(path)).run_once())
    assert (outcome.result, outcome.reason) == ("success", "")
    assert [(step.name, step.status_code) for step in outcome.steps] == [("create", 201), ("fetch", 200)]
    assert target.fetched == [1]  # the id the first step got back
    check_span = next(span for span in otelkit_capture.spans if span["name"] == "synthetic item-roundtrip")
    steps = [span for span in otelkit_capture.spans if span["parent_span_id"] == check_span["span_id"]]
    assert [(span["name"], span["attributes"]["synthetic.step.name"]) for span in steps] == [
        ("POST", "create"),
        ("GET", "fetch"),
    ]
    assert TOKEN not in repr(otelkit_capture.spans)


def test_a_failing_step_fails_the_check_and_says_which_and_why(
    otelkit_capture: MetricsCapture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_TOKEN", TOKEN)
    target = Target(**QUIET)
    with serve(target.app) as base_url:
        path = write(tmp_path, {"base_url": base_url, "checks": [multi_step("something-else")]})
        (outcome,) = asyncio.run(SyntheticRunner(load_checks(path)).run_once())
        monkeypatch.setenv("SYNTH_TOKEN", "wrong")
        (unauthorized,) = asyncio.run(SyntheticRunner(load_checks(path)).run_once())
    assert outcome.result == "failure"
    assert outcome.reason == "step fetch: $.name is 'probe', expected 'something-else'"
    assert unauthorized.result == "failure"
    assert [step.name for step in unauthorized.steps] == ["create"]  # stopped at the first failing step
    assert re.match(r"step create: status 401, expected 201", unauthorized.reason)
    assert otelkit_capture.value("synthetic_checks_total", check="item-roundtrip", result="failure") == 2


def test_the_shipped_checks_file_and_the_default_checks_are_the_same_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_BASE_URL", "http://svc:8000/")
    shipped = load_checks(REPO / "synthetic" / "checks.yaml")
    assert [check.name for check in shipped] == ["api-health", "api-health-detailed", "api-docs", "metrics-endpoint"]
    assert [step.url for step in shipped[2].steps] == ["http://svc:8000/docs", "http://svc:8000/openapi.json"]
    as_code = default_checks("http://svc:8000/")
    for from_file, from_code in zip(shipped, as_code, strict=True):
        assert from_file.model_dump() == from_code.model_dump(), from_file.name


def test_the_default_checks_pass_against_an_otelkit_service(otelkit_capture: MetricsCapture) -> None:
    target = Target(**QUIET)
    with serve(target.app) as base_url:
        results = asyncio.run(SyntheticRunner(default_checks(base_url)).run_once())
    assert [(outcome.check, outcome.result) for outcome in results] == [
        ("api-health", "success"),
        ("api-health-detailed", "success"),
        ("api-docs", "success"),
        ("metrics-endpoint", "success"),
    ]


def test_a_yaml_checks_file_without_pyyaml_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, {"checks": [{"name": "health", "url": "http://127.0.0.1:1/health"}]})
    monkeypatch.setitem(sys.modules, "yaml", None)  # importing it now fails, as if not installed
    with pytest.raises(OtelkitConfigError, match=re.escape("PyYAML: pip install 'otelkit[synthetic]'")):
        load_checks(path)


def test_json_paths() -> None:
    document = {"items": [{"id": 7, "tags": ["a", "b"]}], "odd key": True}
    assert find(document, "$.items[0].id") == 7
    assert find(document, "$.items[-1].tags[1]") == "b"
    assert find(document, "$['odd key']") is True
    assert find(document, "$") == document
    with pytest.raises(PathNotFound, match=r"\$.items\[0\] has no member 'name'"):
        find(document, "$.items[0].name")
    with pytest.raises(PathNotFound, match=r"has no element \[3\]"):
        find(document, "$.items[3]")


def test_a_url_only_known_at_run_time_that_no_request_can_carry_is_that_runs_error(
    otelkit_capture: MetricsCapture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extracted value puts a NUL in the next step's URL: that check errs, the runner and the other checks go on."""
    monkeypatch.setenv("SYNTH_TOKEN", TOKEN)
    target = Target(**QUIET)
    broken = multi_step("a\x00b")
    broken["steps"][0]["json"] = {"name": "a\x00b"}
    broken["steps"][1]["extract"] = {"name": "$.name"}
    broken["steps"].append({"name": "follow", "url": "/items/${name}"})
    with serve(target.app) as base_url:
        path = write(tmp_path, {"base_url": base_url, "checks": [broken, {"name": "gate", "url": "/gate"}]})
        broken_run, gate_run = asyncio.run(SyntheticRunner(load_checks(path)).run_once())
    assert broken_run.result == "error"
    assert [(step.name, step.result) for step in broken_run.steps] == [
        ("create", "success"),
        ("fetch", "success"),
        ("follow", "error"),
    ]
    assert broken_run.reason.startswith("step follow: cannot build the request: InvalidURL: Invalid non-printable")
    assert gate_run.result == "success"
    assert otelkit_capture.value("synthetic_checks_total", check="item-roundtrip", result="error") == 1
    follow = next(span for span in otelkit_capture.spans if span["attributes"].get("synthetic.step.name") == "follow")
    assert (follow["status"], follow["attributes"]["synthetic.step.result"]) == ("ERROR", "error")
