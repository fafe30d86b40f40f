"""Small PromQL builders shared by the recording and alerting rule generators."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(window: str) -> int:
    """``"5m"`` -> ``300``: the PromQL duration as seconds (one unit only, as the config uses)."""
    match = re.fullmatch(r"(\d+)([smhdw])", window)
    if match is None:
        raise ValueError(f"window {window!r} is not a single-unit PromQL duration like '5m' or '1d'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def number(value: float) -> str:
    """A threshold as PromQL text without float noise (``0.05``, ``500``, ``14.4``)."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def selector(metric: str, matchers: str = "") -> str:
    return f"{metric}{{{matchers}}}" if matchers else metric


def with_service(expr: str) -> str:
    """Copy ``job`` into ``service`` (see the module docstring of rules_config)."""
    return f'label_replace(\n{indent(expr)},\n  "service", "$1", "job", "(.*)"\n)'


def indent(expr: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in expr.splitlines())


def rate_sum(metric: str, window: str, matchers: str = "", by: str = "job") -> str:
    return f"sum by ({by}) (rate({selector(metric, matchers)}[{window}]))"


def ratio(metric: str, window: str, part: str) -> str:
    """Share of ``metric``'s rate matching ``part`` (0 when no series matches, so "all fail" and
    "none fail" are both numbers rather than an empty result)."""
    total = rate_sum(metric, window)
    return f"(\n  {rate_sum(metric, window, part)}\n  or\n  0 * {total}\n)\n/\n{total}"


def guarded(condition: str, rate_record: str, window: str, minimum: int) -> str:
    """``condition`` only where ``rate_record`` (a per-second rate over ``window``) counts ``minimum`` events."""
    return f"(\n{indent(condition)}\n)\nand on (job, service)\n  {rate_record} * {seconds(window)} >= {minimum}"


def recording(record: str, expr: str) -> dict[str, Any]:
    return {"record": record, "expr": expr}
