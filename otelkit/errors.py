"""The one error type otelkit raises for bad configuration."""

from __future__ import annotations


class OtelkitConfigError(ValueError):
    """Raised by `otelkit.init()` when a setting is invalid.

    The message names the setting, the environment variable that sets it, the
    rejected value (redacted for secrets) and what would be accepted, so the fix
    is obvious from the log line alone.
    """
