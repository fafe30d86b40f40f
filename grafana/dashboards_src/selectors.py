"""PromQL fragments the dashboards repeat: the variable-bound selectors and the common shapes of queries."""

from __future__ import annotations

from .config import INSTANCE, SERVICE

# Raw series: one service (job) and its chosen instances.
RAW = f"{SERVICE}, {INSTANCE}"


def rate(metric: str, extra: str = "", by: str = "", window: str = "$__rate_interval") -> str:
    """``sum by (<by>) (rate(<metric>{<service>, <instance>, <extra>}[<window>]))``."""
    selector = f"{RAW}, {extra}" if extra else RAW
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{{{selector}}}[{window}]))"


def increase(metric: str, extra: str = "", by: str = "", window: str = "$__range") -> str:
    selector = f"{RAW}, {extra}" if extra else RAW
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(increase({metric}{{{selector}}}[{window}]))"


def quantile(q: float, histogram: str, by: str = "", extra: str = "") -> str:
    """``histogram_quantile`` over a histogram's buckets, grouped by ``by`` (``le`` is added); grouped, only
    for the groups observed in the window (an idle endpoint has no quantile: NaN otherwise)."""
    grouping = f"{by}, le" if by else "le"
    quantile = f"histogram_quantile({q}, {rate(f'{histogram}_bucket', extra, grouping)})"
    if not by:
        return quantile
    return f"{quantile}\nand on ({by})\n({rate(f'{histogram}_count', extra, by)} > 0)"


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator``: only where both sides always have the same series (gauges of one pool,
    a histogram's _sum and _count); a part of a whole goes through ``share`` instead. Label sets whose
    denominator is 0 (an endpoint idle in the window) are left out rather than drawn as NaN."""
    return f"{numerator}\n/\n(({denominator}) > 0)"


def or_zero(part: str, whole: str) -> str:
    """``(part or 0 * whole)``: ``part`` for every label set of ``whole``, 0 where ``part`` has no series
    (a model that never succeeded, an endpoint without a 5xx), as the recording rules do."""
    return f"(\n{part}\nor\n0 * {whole}\n)"


def share(part: str, whole: str) -> str:
    """``part / whole`` where ``part`` counts a subset of ``whole``: a label value with no ``part`` series
    shows 0 instead of vanishing from the panel (the moment it matters: every request failed)."""
    return ratio(or_zero(part, whole), whole)


def recorded(rule: str) -> str:
    """A recording rule of stack/prometheus/rules (aggregated by job: no instance to select)."""
    return f"{rule}{{{SERVICE}}}"
