"""Business alerts: payment failures, generation success, queue depth."""

from __future__ import annotations

from typing import Any

from .alert_rule import alert
from .promql import guarded, number, with_service
from .rules_config import Config


def payment_failures(config: Config) -> dict[str, Any]:
    window = config.payment_window
    condition = f"job:payment_requests:failure_ratio_rate{window} > {number(config.payment_failure_ratio_critical)}"
    return alert(
        "PaymentFailureRateHigh",
        guarded(condition, f"job:payment_requests:rate{window}", window, config.payment_min_requests),
        for_=config.payment_for,
        severity="critical",
        family="payments",
        runbook="payment-failures",
        summary=f"More than {config.payment_failure_ratio_critical:.0%} of payment requests fail.",
        description=(
            "{{ $value | humanizePercentage }} of {{ $labels.service }}'s payment requests did not succeed over "
            f"the last {window} (threshold {config.payment_failure_ratio_critical:.0%})."
        ),
    )


def generation_success(config: Config) -> dict[str, Any]:
    window = config.generation_window
    condition = (
        f"job:generation_requests:success_ratio_rate{window} < {number(config.generation_success_ratio_warning)}"
    )
    return alert(
        "GenerationSuccessRateLow",
        guarded(condition, f"job:generation_requests:rate{window}", window, config.generation_min_requests),
        for_=config.generation_for,
        severity="warning",
        family="generation",
        runbook="generation-failures",
        summary=f"Fewer than {config.generation_success_ratio_warning:.0%} of generations succeed.",
        description=(
            "Only {{ $value | humanizePercentage }} of {{ $labels.service }}'s generations succeeded over the last "
            f"{window} (threshold {config.generation_success_ratio_warning:.0%}; failures and timeouts count "
            "against it)."
        ),
    )


def queue_depth(config: Config) -> dict[str, Any]:
    return alert(
        "QueueDepthHigh",
        with_service(f"queue_depth > {number(config.queue_depth_warning)}"),
        for_=config.queue_depth_for,
        severity="warning",
        family="queue",
        runbook="infrastructure",
        summary=f"A queue holds more than {number(config.queue_depth_warning)} items.",
        description=(
            "Queue {{ $labels.queue }} of {{ $labels.service }} has held more than "
            f"{number(config.queue_depth_warning)} items for {config.queue_depth_for} (now {{{{ $value }}}})."
        ),
    )


def business_rules(config: Config) -> list[dict[str, Any]]:
    return [payment_failures(config), generation_success(config), queue_depth(config)]
