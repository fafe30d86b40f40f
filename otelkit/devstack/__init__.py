"""The local stack behind ``otelkit stack``: every server of the pipeline, on loopback, one command.

``stack.up(state, options)`` starts (or reuses) PostgreSQL and Redis (unless ``options`` names the user's
own), the alert sinks, the collector, Alertmanager, Prometheus, the exporters, the demo service behind
nginx and the traffic generator; ``stack.down`` stops exactly those. Processes, PID files, logs, data and
rendered configs live in one state directory.
"""

from __future__ import annotations

from otelkit.devstack.state import StateDir, default_state_dir

__all__ = ["StateDir", "default_state_dir"]
