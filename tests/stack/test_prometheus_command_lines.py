"""Every Prometheus command line the repo documents or runs keeps the spec's 15-day retention and
exemplar storage (the trace ids the collector's exporter serves are dropped without it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from otelkit.devstack import components
from otelkit.devstack.components import Options
from otelkit.devstack.ports import DEFAULT_PORTS
from otelkit.devstack.state import StateDir
from tests.support.prometheus import prometheus_argv

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ("--storage.tsdb.retention.time=15d", "--enable-feature=exemplar-storage")
# `prometheus --flag`, at the start of a command (not prometheus-alertmanager, not a path component).
COMMAND = re.compile(r"(?:^|[\s`'\"|(])prometheus\s+--")


def documented_command_lines() -> dict[str, str]:
    """``file:line`` -> the command with its continuation lines, from every tracked Markdown file and
    the comments of every tracked YAML file."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.md", "*.yml", "*.yaml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = {}
    for name in tracked:
        lines = (REPO / name).read_text().splitlines()
        for index, line in enumerate(lines):
            if name.endswith((".yml", ".yaml")) and not line.lstrip().startswith("#"):
                continue
            if not COMMAND.search(line):
                continue
            command = [line]
            while command[-1].rstrip().endswith("\\") and index + len(command) < len(lines):
                command.append(lines[index + len(command)])
            found[f"{name}:{index + 1}"] = " ".join(command)
    return found


def test_the_known_documented_commands_are_found() -> None:
    """The scan is not vacuous: the two places that document the run command are among what it finds."""
    files = {location.rsplit(":", 1)[0] for location in documented_command_lines()}
    assert {"stack/prometheus/prometheus.yml", "stack/README.md"} <= files


@pytest.mark.parametrize("location", sorted(documented_command_lines()))
def test_every_documented_command_keeps_retention_and_exemplars(location: str) -> None:
    command = documented_command_lines()[location]
    missing = [flag for flag in REQUIRED if flag not in command]
    assert missing == [], f"{location}: {command!r} lacks {missing}"


def test_compose_runs_prometheus_with_retention_and_exemplars() -> None:
    compose = yaml.safe_load((REPO / "stack" / "compose.yaml").read_text())
    command = compose["services"]["prometheus"]["command"]
    assert [flag for flag in REQUIRED if flag not in command] == []


def test_the_native_stack_runs_prometheus_with_retention_and_exemplars(tmp_path: Path) -> None:
    built = {
        component.name: component for component in components.build(StateDir(tmp_path), dict(DEFAULT_PORTS), Options())
    }
    argv = built["prometheus"].argv
    assert [flag for flag in REQUIRED if flag not in argv] == []


def test_the_test_harnesses_run_prometheus_with_retention_and_exemplars(tmp_path: Path) -> None:
    """tests/support/pipeline.py (collector end to end) and tests/support/prometheus.py (alerting)
    both start Prometheus through `prometheus_argv`."""
    argv = prometheus_argv(tmp_path / "prometheus.yml", tmp_path / "data", 9090)
    assert [flag for flag in REQUIRED if flag not in argv] == []
