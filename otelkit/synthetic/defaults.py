"""The spec's uptime checks for one otelkit service, as code: API health, detailed health, documentation,
and a custom endpoint (the metrics endpoint Prometheus scrapes).

    checks = default_checks("http://checkout:8000")   # plus custom ones: [*default_checks(url), my_check]

``synthetic/checks.yaml`` at the repo root is the same checks as a file to review and extend;
tests/synthetic checks that the two are equal, field for field.
"""

from __future__ import annotations

from typing import Any

from otelkit.synthetic.model import Check

USER_AGENT = "otelkit-synthetic"


def default_checks(base_url: str, *, interval_seconds: float = 30.0, timeout_seconds: float = 5.0) -> list[Check]:
    """``/health`` and ``/health/detailed`` answer ``{"status": "ok"}``, ``/docs`` serves Swagger UI and its
    schema, ``/metrics`` exposes ``target_info``. ``interval_seconds`` and ``timeout_seconds`` are the
    file's ``defaults``; the documentation (every 300 s) and metrics (60 s) checks keep their own intervals."""
    root = base_url.rstrip("/")
    common: dict[str, Any] = {"interval_seconds": interval_seconds, "timeout_seconds": timeout_seconds, "jitter": 0.1}

    def get(path: str, expect: dict[str, Any], **step: Any) -> dict[str, Any]:
        return {"url": f"{root}{path}", "headers": {"User-Agent": USER_AGENT}, "expect": expect, **step}

    ok = {"status": 200, "json": {"$.status": "ok"}}
    definitions: list[dict[str, Any]] = [
        {"name": "api-health", **get("/health", ok), **common, "latency_budget_ms": 500},
        {"name": "api-health-detailed", **get("/health/detailed", ok), **common, "latency_budget_ms": 2500},
        {
            "name": "api-docs",
            "steps": [
                get("/docs", {"status": 200, "body_contains": "swagger-ui"}, name="page"),
                get("/openapi.json", {"status": 200}, name="schema"),
            ],
            **common,
            "interval_seconds": 300,
        },
        {
            "name": "metrics-endpoint",
            **get("/metrics", {"status": 200, "body_contains": "target_info"}),
            **common,
            "interval_seconds": 60,
        },
    ]
    return [Check.model_validate(definition) for definition in definitions]
