"""Ratio panels keep a label value whose part has no series: it shows 0 (or 1), it does not vanish.

`sum by (x) (rate(part)) / sum by (x) (rate(all))` drops every x without a `part` series: a model with only
timeouts leaves "success rate by model", a healthy endpoint has no 5xx line, a cache that never missed has
no hit ratio. Each committed panel query is evaluated by promtool (Prometheus's own engine) over series
where one label value has only the other side, and must return it with the right value; a label value
idle in the window (no requests to an endpoint) must be left out, not drawn as NaN.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.grafana.dashboards import BUILT_INS, load_dashboards, panels, substitute
from tests.support.processes import require_binary

VALUES = {"service": "svc", "instance": ".*", "check": ".*", **BUILT_INS}
SERIES_LABELS = 'job="svc", instance="i-1"'
ONE_PER_SECOND = "0+60x10"  # one sample a minute: a rate of 1/s
IDLE = "60+0x10"  # a series that stopped moving: an endpoint without requests in the window


@dataclass(frozen=True)
class Case:
    dashboard: str
    panel: str
    series: tuple[str, ...]
    expected: dict[str, float]
    """Result labels -> value; promtool wants exactly these samples, no more, no fewer."""
    idle: tuple[str, ...] = ()
    """Series that do not move: their label value must be left out, not drawn as NaN."""


CASES = [
    Case(
        "business-kpis",
        "Generation success rate by model",
        (
            f'generation_requests_total{{{SERIES_LABELS}, model_type="sdxl", status="success"}}',
            f'generation_requests_total{{{SERIES_LABELS}, model_type="llm", status="timeout"}}',
        ),
        {'{model_type="sdxl"}': 1, '{model_type="llm"}': 0},
    ),
    Case(
        "api-performance",
        "Error rate (5xx share) by endpoint",
        (
            f'http_requests_total{{{SERIES_LABELS}, handler="/items", status="200"}}',
            f'http_requests_total{{{SERIES_LABELS}, handler="/fail", status="503"}}',
        ),
        {'{handler="/items"}': 0, '{handler="/fail"}': 1},
        idle=(f'http_requests_total{{{SERIES_LABELS}, handler="/idle", status="200"}}',),
    ),
    Case(
        "api-performance",
        "Average response time by endpoint",
        (
            f'http_request_duration_seconds_sum{{{SERIES_LABELS}, method="GET", handler="/items"}}',
            f'http_request_duration_seconds_count{{{SERIES_LABELS}, method="GET", handler="/items"}}',
        ),
        {'{handler="/items"}': 1},
        idle=(
            f'http_request_duration_seconds_sum{{{SERIES_LABELS}, method="GET", handler="/idle"}}',
            f'http_request_duration_seconds_count{{{SERIES_LABELS}, method="GET", handler="/idle"}}',
        ),
    ),
    Case(
        "api-performance",
        "P95 response time by endpoint",
        (
            f'http_request_duration_seconds_bucket{{{SERIES_LABELS}, method="GET", handler="/items", le="0.5"}}',
            f'http_request_duration_seconds_bucket{{{SERIES_LABELS}, method="GET", handler="/items", le="+Inf"}}',
            f'http_request_duration_seconds_count{{{SERIES_LABELS}, method="GET", handler="/items"}}',
        ),
        {'{handler="/items"}': 0.475},  # every request in the first bucket: 95 % of the way through it
        idle=(
            f'http_request_duration_seconds_bucket{{{SERIES_LABELS}, method="GET", handler="/idle", le="0.5"}}',
            f'http_request_duration_seconds_bucket{{{SERIES_LABELS}, method="GET", handler="/idle", le="+Inf"}}',
            f'http_request_duration_seconds_count{{{SERIES_LABELS}, method="GET", handler="/idle"}}',
        ),
    ),
    Case(
        "infrastructure",
        "Cache hit ratio",
        (
            f'cache_hits_total{{{SERIES_LABELS}, cache="sessions"}}',  # never missed
            f'cache_misses_total{{{SERIES_LABELS}, cache="cold"}}',  # never hit
            f'cache_hits_total{{{SERIES_LABELS}, cache="items"}}',
            f'cache_misses_total{{{SERIES_LABELS}, cache="items"}}',
        ),
        {'{cache="sessions"}': 1, '{cache="cold"}': 0, '{cache="items"}': 0.5},
    ),
    Case(
        "sla-slo",
        "Check success ratio",
        (
            f'synthetic_checks_total{{{SERIES_LABELS}, check="api-health", result="success"}}',
            f'synthetic_checks_total{{{SERIES_LABELS}, check="checkout", result="failure"}}',
        ),
        {'{check="api-health"}': 1, '{check="checkout"}': 0},
    ),
]


def panel_query(dashboard: str, title: str) -> str:
    """The first query of the committed panel, variables substituted."""
    found = [p for _, p in panels(load_dashboards()[dashboard]) if p["title"] == title]
    assert len(found) == 1, f"{dashboard}: no single panel {title!r}"
    return substitute(found[0]["targets"][0]["expr"], VALUES)


def promtool_test(tmp_path: Path, case: Case, expr: str) -> subprocess.CompletedProcess[str]:
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *({"series": series, "values": ONE_PER_SECOND} for series in case.series),
                    *({"series": series, "values": IDLE} for series in case.idle),
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "5m",
                        "exp_samples": [{"labels": labels, "value": value} for labels, value in case.expected.items()],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "share_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    binary = require_binary("promtool", "prometheus")
    return subprocess.run([binary, "test", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.panel)
def test_a_label_value_without_its_part_keeps_its_line_and_an_idle_one_is_left_out(tmp_path: Path, case: Case) -> None:
    result = promtool_test(tmp_path, case, panel_query(case.dashboard, case.panel))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fails_for_a_plain_ratio(tmp_path: Path) -> None:
    """The naive form of the first case loses the model with only timeouts, and promtool says so."""
    case = CASES[0]
    success, everything = (
        f'sum by (model_type) (rate(generation_requests_total{{job=~"svc"{extra}}}[1m]))'
        for extra in (', status="success"', "")
    )
    result = promtool_test(tmp_path, case, f"{success} / {everything}")
    assert result.returncode != 0
    assert 'model_type="llm"' in result.stdout + result.stderr
