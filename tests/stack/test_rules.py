"""stack/prometheus: the committed rules match the generator, pass promtool, and are pinned by unit tests."""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.prometheus import generate
from stack.prometheus.promql import number, seconds
from stack.prometheus.rules_config import CONFIG, RUNBOOKS, BurnRateWindow
from tests.support.processes import require_binary

PROMETHEUS_DIR = Path(generate.__file__).parent
TESTS_DIR = PROMETHEUS_DIR / "tests"
RULE_FILES = sorted(generate.RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))
# Owned by the SLA work (otelkit/sla, stack/prometheus/sla.py and ServiceSLAViolated), which rewrites
# these alerts and their cases; their quiet cases are not yet evaluated a full window + `for` in.
QUIET_AFTER_FOR_PENDING = {"ServiceSLAViolated", "SyntheticCheckSLAViolated"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "prometheus")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_committed_rules_match_the_generator(tmp_path: Path) -> None:
    generate.write(tmp_path)
    fresh = {path.name: path.read_text() for path in tmp_path.glob("*.yml")}
    committed = {path.name: path.read_text() for path in RULE_FILES}
    assert committed.keys() == fresh.keys(), "rule files added or removed: run python -m stack.prometheus.generate"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} differ from rules_config.py: run .venv/bin/python -m stack.prometheus.generate"


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_unit_tests() -> None:
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_service_summary_description_and_a_spec_runbook() -> None:
    for rule in alert_rules():
        name, labels, annotations = rule["alert"], rule["labels"], rule["annotations"]
        assert labels["severity"] in {"critical", "warning", "info"}, name
        assert labels["family"], name
        carries_service = re.search(r"\bjob(_\w+)?:", rule["expr"]) or '"service", "$1", "job"' in rule["expr"]
        assert "service" in labels or carries_service, name
        assert rule["for"], name
        assert annotations["summary"] and "{{" not in annotations["summary"], f"{name}: static summary"
        assert "$value" in annotations["description"], f"{name}: description without the value"
        assert annotations["runbook_url"] in RUNBOOKS.values(), name


def _test_cases() -> list[dict[str, Any]]:
    tests = [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]
    return [case for test in tests for case in test["alert_rule_test"]]


def _duration(text: str) -> int:
    """promtool's eval_time or a rule's `for` ("1h10m", "90m", "0s") in seconds."""
    parts = re.findall(r"(\d+)([smhdw])", text)
    assert "".join(n + u for n, u in parts) == text, f"unexpected duration {text!r}"
    return sum(seconds(n + u) for n, u in parts)


def settled_after(rule: dict[str, Any]) -> int:
    """When a condition true since the first sample has surely been true for `for`: the longest range
    the expression reads (directly or through a recorded ``_rate<window>``) plus `for`. A quiet case
    evaluated earlier may only be pending, or reading a window not yet full, and proves nothing."""
    windows = re.findall(r"\[(\d+[smhdw])[]:]", rule["expr"]) + re.findall(r"_rate(\d+[smhdw])\b", rule["expr"])
    return max((seconds(w) for w in windows), default=0) + _duration(rule["for"])


def _variant(labels: dict[str, str]) -> tuple[str, str]:
    """What tells apart the rules that share an alert name: a burn-rate pair, or what ServiceDown saw."""
    return labels.get("long", ""), labels.get("evidence", "")


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    fired: set[tuple[str, str, str]] = set()
    quiet_at: dict[str, int] = {}
    for case in _test_cases():
        if case["exp_alerts"]:
            fired.update((case["alertname"], *_variant(alert["exp_labels"])) for alert in case["exp_alerts"])
        else:
            name = case["alertname"]
            quiet_at[name] = max(quiet_at.get(name, 0), _duration(case["eval_time"]))
    rules = alert_rules()
    variants = {(rule["alert"], *_variant(rule["labels"])) for rule in rules}
    assert variants - fired == set(), "alerts without a firing case"
    assert {name for name, *_ in variants} - quiet_at.keys() == {"Watchdog"}, "alerts without a quiet case"
    settled: dict[str, int] = {}
    for rule in rules:  # an alert name's earliest settled variant (the burn-rate pairs differ)
        settled[rule["alert"]] = min(settled.get(rule["alert"], 1 << 62), settled_after(rule))
    early = {
        name: f"latest quiet case at {quiet_at[name]}s, settled at {settled[name]}s"
        for name in quiet_at
        if quiet_at[name] < settled[name] and name not in QUIET_AFTER_FOR_PENDING
    }
    assert early == {}, "quiet cases that may only be pending: evaluate one after window + `for`"


# Each mutation moves one threshold or window just enough that a hand-written promtool case must
# notice: the unit tests pin the spec's numbers, not whatever rules_config says.
def _burn(factor: float) -> tuple[BurnRateWindow, ...]:
    first, *rest = CONFIG.burn_rate_windows
    return (dataclasses.replace(first, factor=factor), *rest)


MUTATIONS: list[tuple[str, Any, str]] = [
    ("service_down_for", "3m", "api"),  # shorter than 2m would be refused: collector_down_for is 1m
    ("collector_down_for", "90s", "api"),
    ("collector_jobs", ("otel-services",), "api"),
    ("instance_down_for", "6m", "api"),
    ("service_info_selector", "", "api"),
    ("retired_after", "6h", "long_absence"),
    ("error_ratio_for", "3m", "api"),
    ("latency_for", "11m", "api"),
    ("error_ratio_critical", 0.048, "api"),
    ("http_error_status_regex", "[45]..", "api"),
    ("http_min_requests", 90, "api"),
    ("latency_threshold_seconds", 0.51, "api"),
    ("payment_failure_ratio_critical", 0.115, "business"),
    ("payment_min_requests", 10, "business"),
    ("payment_for", "6m", "business"),
    ("generation_success_ratio_warning", 0.96, "business"),
    ("generation_min_requests", 10, "business"),
    ("generation_for", "16m", "business"),
    ("queue_depth_warning", 499, "business"),
    ("queue_depth_for", "11m", "business"),
    ("cpu_percent_warning", 89.9, "infrastructure"),
    ("cpu_for", "16m", "infrastructure"),
    ("memory_percent_critical", 95.2, "infrastructure"),
    ("memory_for", "6m", "infrastructure"),
    ("disk_percent_warning", 91, "infrastructure"),
    ("disk_for", "16m", "infrastructure"),
    ("db_pool_usage_ratio_warning", 0.95, "infrastructure"),
    ("db_pool_for", "6m", "infrastructure"),
    ("slo_availability", 0.99, "slo"),
    ("burn_rate_windows", _burn(14), "slo"),
    ("slo_min_requests", 50, "slo"),
    ("sla_error_ratio", 0.008, "slo"),
    ("sla_availability", 0.99, "slo"),
    ("sla_average_seconds", 1.1, "slo"),
    ("sla_p95_seconds", 0.75, "slo"),
    ("absent_for", "15m", "business"),
    ("absent_for", "9m", "infrastructure"),
    ("absent_for", "11m", "api"),
    ("synthetic_min_runs", 150, "sla"),
]


def _mutated_run(directory: Path, field: str, value: Any, suite: str) -> subprocess.CompletedProcess[str]:
    generate.write(directory / "rules", dataclasses.replace(CONFIG, **{field: value}))
    shutil.copytree(TESTS_DIR, directory / "tests")
    return promtool("test", "rules", str(directory / "tests" / f"{suite}_test.yml"))


@pytest.fixture(scope="module")
def mutated_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, subprocess.CompletedProcess[str]]:
    """promtool's verdict on every mutation, run side by side (each is one promtool process; a
    suite such as slo_test.yml takes seconds), so the parametrized tests below only read them."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {
            index: pool.submit(_mutated_run, tmp_path_factory.mktemp(f"mutation-{index}"), *mutation)
            for index, mutation in enumerate(MUTATIONS)
        }
        return {index: future.result() for index, future in futures.items()}


@pytest.mark.parametrize("index", range(len(MUTATIONS)), ids=[m[0] for m in MUTATIONS])
def test_unit_tests_catch_a_moved_threshold(
    mutated_runs: dict[int, subprocess.CompletedProcess[str]], index: int
) -> None:
    field, value, suite = MUTATIONS[index]
    result = mutated_runs[index]
    assert result.returncode != 0, f"{field}={value!r} went unnoticed by {suite}_test.yml"
    assert re.search(r"FAILED", result.stdout + result.stderr)


README = PROMETHEUS_DIR.parent / "README.md"


def _readme_thresholds() -> list[list[str]]:
    """The cells of stack/README.md's thresholds table, one list per row."""
    lines = README.read_text().split("<!-- thresholds table", 1)[1].splitlines()[3:]
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines))
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in rows]


def test_readme_thresholds_table_matches_the_rules() -> None:
    rules = alert_rules()
    documented: set[str] = set()
    conditions: dict[str, str] = {}
    for alerts, condition, for_, severity in _readme_thresholds():
        if alerts.startswith("`*Absent`"):
            names = [key.alert for key in CONFIG.key_metrics]
            fors, severities = [for_] * len(names), [key.severity for key in CONFIG.key_metrics]
            assert severity.startswith("warning (info") and set(severities) == {"warning", "info"}
        else:
            names = re.findall(r"`([A-Za-z0-9]+)`", alerts)
            fors = for_.split(" / ") if len(names) > 1 else [for_]
            severities = severity.split(" / ") if len(names) > 1 else [severity.split()[0]]
        for name, durations, level in zip(names, fors, severities, strict=True):
            documented.add(name)
            actual = {rule["for"] for rule in rules if rule["alert"] == name and rule["labels"]["severity"] == level}
            assert actual, f"README: no {level} {name} rule"
            expected = {"0s"} if durations == "" else set(durations.split(", "))
            assert actual == expected, f"README says {name} ({level}) waits {durations}, the rules {actual}"
        conditions[names[0]] = conditions.get(names[0], "") + " " + condition
    for name, texts in _threshold_texts().items():
        for text in texts:
            assert text in conditions[name], f"README's condition for {name} lacks {text!r}: {conditions[name]}"
    assert documented == {rule["alert"] for rule in rules}, "alerts missing from stack/README.md's table"


def _threshold_texts() -> dict[str, list[str]]:
    """What each alert's README condition must say, from rules_config."""
    c = CONFIG
    burn = [f"{number(p.factor)}x ({p.long} & {p.short})" for p in c.burn_rate_windows]
    return {
        "HttpErrorRateHigh": [
            f"> {c.error_ratio_critical:.0%} over {c.error_ratio_window}",
            f"≥ {c.http_min_requests} ",
        ],
        "HttpLatencyP95High": [
            f"P{round(c.latency_quantile * 100)} > {round(c.latency_threshold_seconds * 1000)} ms",
            f"over {c.latency_window}",
        ],
        "HttpErrorBudgetBurn": [*burn, f"{c.slo_availability:.1%} SLO", f"≥ {c.slo_min_requests} "],
        "PaymentFailureRateHigh": [
            f"> {c.payment_failure_ratio_critical:.0%} over {c.payment_window}",
            f"≥ {c.payment_min_requests} payments",
        ],
        "GenerationSuccessRateLow": [
            f"< {c.generation_success_ratio_warning:.0%} over {c.generation_window}",
            f"≥ {c.generation_min_requests} generations",
        ],
        "QueueDepthHigh": [f"> {number(c.queue_depth_warning)}"],
        "HostCpuUsageHigh": [
            f"> {number(c.cpu_percent_warning)}% / > {number(c.memory_percent_critical)}% / "
            f"> {number(c.disk_percent_warning)}%"
        ],
        "DatabasePoolAlmostExhausted": [f"> {number(c.db_pool_usage_ratio_warning)}"],
        "ServiceSLAViolated": [
            f"over {c.sla_window}",
            f"availability < {c.sla_availability:.1%}",
            f"5xx share > {c.sla_error_ratio:.0%}",
            f"average ≥ {number(c.sla_average_seconds)} s",
            f"P95 > {round(c.sla_p95_seconds * 1000)} ms",
            f"≥ {c.http_min_requests} ",
        ],
    }


def test_readme_thresholds_check_catches_a_moved_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table check reads rules_config: a threshold moved there (and not in the README) fails it."""
    monkeypatch.setattr(sys.modules[__name__], "CONFIG", dataclasses.replace(CONFIG, queue_depth_warning=400))
    with pytest.raises(AssertionError, match="QueueDepthHigh lacks '> 400'"):
        test_readme_thresholds_table_matches_the_rules()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("retired_after", "1 week", r"retired_after='1 week': expected a single-unit PromQL duration"),
        ("service_down_for", "2m30s", r"service_down_for='2m30s': expected a single-unit"),
        ("collector_down_for", "2m", r"collector_down_for='2m' must be shorter than service_down_for='2m'"),
        ("collector_jobs", (), r"collector_jobs=\(\): expected one or more scrape job names"),
        ("collector_jobs", ("otel|.*",), r"collector_jobs=\('otel\|\.\*',\): expected"),
    ],
)
def test_bad_liveness_settings_are_refused_by_name(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CONFIG, **{field: value})
