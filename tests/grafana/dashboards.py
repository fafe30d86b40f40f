"""Read the committed dashboards as plain JSON: panels with their row, targets, and variables substituted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
PROVISIONING_DIR = REPO / "grafana" / "provisioning"
BUILT_INS = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
"""What Grafana would put in for its interval variables on a dashboard over the last hour."""


@dataclass(frozen=True)
class Target:
    dashboard: str
    row: str
    panel: dict[str, Any]
    target: dict[str, Any]

    @property
    def expr(self) -> str:
        return self.target["expr"]

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel['title']} / {self.target.get('refId')}"


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """File stem -> dashboard JSON."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(row title, panel) for every non-row panel, nested (collapsed) rows included."""
    row = ""
    for panel in dashboard.get("panels", []):
        if panel["type"] == "row":
            row = panel["title"]
            for inner in panel.get("panels", []):
                yield row, inner
            continue
        yield row, panel


def targets(dashboards: Mapping[str, dict[str, Any]]) -> Iterator[Target]:
    for name, dashboard in dashboards.items():
        for row, panel in panels(dashboard):
            for target in panel.get("targets", []):
                yield Target(name, row, panel, target)


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard.get("templating", {}).get("list", [])}


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace $name, ${name} and [[name]] like Grafana does; an unknown variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def used_variables(expr: str) -> set[str]:
    return {next(group for group in match.groups() if group) for match in _VARIABLE.finditer(expr)}
