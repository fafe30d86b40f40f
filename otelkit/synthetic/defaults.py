"""The spec's uptime checks for one otelkit service: API health, detailed health, documentation.

    checks = default_checks("http://checkout:8000")   # plus custom ones: [*default_checks(url), my_check]

The same checks, as a file to review and extend, are in ``synthetic/checks.yaml`` at the repo root.
"""

from __future__ import annotations

from otelkit.synthetic.model import Check


def default_checks(base_url: str, *, interval_seconds: float = 30.0, timeout_seconds: float = 5.0) -> list[Check]:
    """``/health`` answers ``{"status": "ok"}``, ``/health/detailed`` passes, ``/docs`` serves Swagger UI."""
    root = base_url.rstrip("/")
    common = {"interval_seconds": interval_seconds, "timeout_seconds": timeout_seconds}
    return [
        Check.model_validate(
            {"name": "api-health", "url": f"{root}/health", "expect": {"json": {"$.status": "ok"}}, **common}
        ),
        Check.model_validate(
            {
                "name": "api-health-detailed",
                "url": f"{root}/health/detailed",
                "expect": {"status": 200, "json": {"$.status": "ok"}},
                **common,
            }
        ),
        Check.model_validate(
            {"name": "api-docs", "url": f"{root}/docs", "expect": {"body_contains": "swagger-ui"}, **common}
        ),
    ]
