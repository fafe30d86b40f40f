"""One alerting rule in otelkit's shape: severity, family and service labels; summary, description, runbook."""

from __future__ import annotations

from typing import Any

from .rules_config import RUNBOOKS, Severity


def alert(
    name: str,
    expr: str,
    *,
    for_: str,
    severity: Severity,
    family: str,
    runbook: str,
    summary: str,
    description: str,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An alerting rule.

    ``family`` groups alerts about one condition (``api-errors``: the error-rate page, the burn-rate
    alerts, the SLA breach). Alertmanager's inhibition mutes a family's warnings and infos while one
    of its critical alerts fires for the same service, and ServiceDown mutes every ``api-*`` family;
    stack/README.md ("Inhibition") lists the few rules across families.
    ``service`` comes from the expression (a copy of ``job``) unless ``labels`` sets it.
    """
    if runbook not in RUNBOOKS:
        raise ValueError(f"alert {name}: runbook {runbook!r} is not in the spec's list {sorted(RUNBOOKS)}")
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "family": family, **(labels or {})},
        "annotations": {"summary": summary, "description": description, "runbook_url": RUNBOOKS[runbook]},
    }
