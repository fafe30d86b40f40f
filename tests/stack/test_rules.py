"""stack/prometheus: the committed rules match the generator, pass promtool, and are pinned by unit tests."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.prometheus import generate
from stack.prometheus.rules_config import CONFIG, RUNBOOKS, BurnRateWindow
from tests.support.processes import require_binary

PROMETHEUS_DIR = Path(generate.__file__).parent
TESTS_DIR = PROMETHEUS_DIR / "tests"
RULE_FILES = sorted(generate.RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))
# The value of these is a constant 1: their description says what is missing instead.
NO_VALUE = {"Watchdog", *(key.alert for key in CONFIG.key_metrics)}


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
        assert name in NO_VALUE or "$value" in annotations["description"], f"{name}: description without the value"
        assert annotations["runbook_url"] in RUNBOOKS.values(), name


def _test_cases() -> list[dict[str, Any]]:
    tests = [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]
    return [case for test in tests for case in test["alert_rule_test"]]


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for case in _test_cases():
        if case["exp_alerts"]:
            fired.update((case["alertname"], alert["exp_labels"].get("long", "")) for alert in case["exp_alerts"])
        else:
            quiet.add(case["alertname"])
    variants = {(rule["alert"], rule["labels"].get("long", "")) for rule in alert_rules()}
    assert variants - fired == set(), "alerts without a firing case"
    assert {name for name, _ in variants} - quiet == {"Watchdog"}, "alerts without a quiet case"  # always fires


# Each mutation moves one threshold or window just enough that a hand-written promtool case must
# notice: the unit tests pin the spec's numbers, not whatever rules_config says.
def _burn(factor: float) -> tuple[BurnRateWindow, ...]:
    first, *rest = CONFIG.burn_rate_windows
    return (dataclasses.replace(first, factor=factor), *rest)


MUTATIONS: list[tuple[str, Any, str]] = [
    ("service_down_for", "1m", "api"),
    ("error_ratio_critical", 0.048, "api"),
    ("http_error_status_regex", "[45]..", "api"),
    ("http_min_requests", 90, "api"),
    ("latency_threshold_seconds", 0.51, "api"),
    ("payment_failure_ratio_critical", 0.115, "business"),
    ("payment_min_requests", 10, "business"),
    ("generation_success_ratio_warning", 0.96, "business"),
    ("queue_depth_warning", 499, "business"),
    ("cpu_percent_warning", 89.9, "infrastructure"),
    ("memory_percent_critical", 95.2, "infrastructure"),
    ("disk_percent_warning", 91, "infrastructure"),
    ("db_pool_usage_ratio_warning", 0.95, "infrastructure"),
    ("slo_availability", 0.99, "slo"),
    ("burn_rate_windows", _burn(14), "slo"),
    ("slo_min_requests", 50, "slo"),
    ("sla_error_ratio", 0.008, "slo"),
    ("sla_availability", 0.99, "slo"),
    ("sla_average_seconds", 1.1, "slo"),
    ("sla_p95_seconds", 0.75, "slo"),
    ("absent_for", "15m", "business"),
    ("synthetic_min_runs", 150, "sla"),
]


@pytest.mark.parametrize(("field", "value", "suite"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_unit_tests_catch_a_moved_threshold(tmp_path: Path, field: str, value: Any, suite: str) -> None:
    generate.write(tmp_path / "rules", dataclasses.replace(CONFIG, **{field: value}))
    shutil.copytree(TESTS_DIR, tmp_path / "tests")
    result = promtool("test", "rules", str(tmp_path / "tests" / f"{suite}_test.yml"))
    assert result.returncode != 0, f"{field}={value!r} went unnoticed by {suite}_test.yml"
    assert re.search(r"FAILED", result.stdout + result.stderr)
