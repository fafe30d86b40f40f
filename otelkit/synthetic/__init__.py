"""Synthetic monitoring: uptime checks as code or config, run on a schedule, measured through otelkit.

    from otelkit.synthetic import SyntheticRunner, load_checks
    otelkit.init(service={"name": "otelkit-synthetic"}, otlp={"endpoint": "http://collector:4317"})
    await SyntheticRunner(load_checks("synthetic/checks.yaml")).run_forever(stop)

Or from the shell: ``otelkit synthetic run --config synthetic/checks.yaml [--once]``.
"""

from __future__ import annotations

from otelkit.synthetic.defaults import default_checks
from otelkit.synthetic.execute import RESULTS, CheckResult, Result, StepResult, run_check
from otelkit.synthetic.loader import checks_from_data, load_checks
from otelkit.synthetic.metrics import SyntheticMetrics
from otelkit.synthetic.model import Check, Expectation, Step
from otelkit.synthetic.runner import SyntheticRunner, first_delay, next_delay, running

__all__ = [
    "RESULTS",
    "Check",
    "CheckResult",
    "Expectation",
    "Result",
    "Step",
    "StepResult",
    "SyntheticMetrics",
    "SyntheticRunner",
    "checks_from_data",
    "default_checks",
    "first_delay",
    "load_checks",
    "next_delay",
    "run_check",
    "running",
]
