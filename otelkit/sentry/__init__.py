"""Sentry for otelkit services: errors with request context, OpenTelemetry spans as Sentry traces.

    otelkit.init(app, sentry={"dsn": "https://<key>@o1.ingest.sentry.io/42"})  # or OTELKIT_SENTRY__DSN
    otelkit.set_user({"id": user.id})
    otelkit.add_breadcrumb("cart priced", category="checkout", data={"items": 3})

Errors carry the trace and span id of the request's OpenTelemetry span; Sentry's performance
view receives the same spans the collector does, sampled once (`otelkit.sentry.sampling`);
everything is scrubbed before it leaves (`otelkit.sentry.scrubbing`).
"""

from __future__ import annotations

from otelkit.sentry.breadcrumbs import add_breadcrumb, set_user
from otelkit.sentry.scrubbing import FILTERED, Scrubber

__all__ = ["FILTERED", "Scrubber", "add_breadcrumb", "set_user"]
