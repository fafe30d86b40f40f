"""In-process rolling windows, the quantile they share with PromQL, incidents, and the targets' verdicts."""

from __future__ import annotations

import pytest

from otelkit.errors import OtelkitConfigError
from otelkit.settings import DEFAULT_BUCKETS, SlaSettings
from otelkit.sla import (
    IncidentLog,
    RollingWindows,
    bucket_quantile,
    incidents_from_samples,
    status_document,
)
from otelkit.sla.targets import WINDOW_SECONDS
from tests.sla.fake_clock import FakeClock

HOUR, DAY = 3600, 86400


def test_each_window_forgets_what_is_older_than_it() -> None:
    clock = FakeClock(1_700_000_000.0)
    windows = RollingWindows(DEFAULT_BUCKETS, clock)
    windows.record(True, 0.3)  # a 5xx taking 0.3 s
    windows.record(False, 0.01)

    def counts() -> dict[str, int]:
        return {window: windows.totals(seconds).count for window, seconds in WINDOW_SECONDS.items()}

    assert counts() == {"1h": 2, "1d": 2, "7d": 2, "30d": 2}
    clock.advance(HOUR + 60)
    assert counts() == {"1h": 0, "1d": 2, "7d": 2, "30d": 2}
    clock.advance(DAY)
    assert counts() == {"1h": 0, "1d": 0, "7d": 2, "30d": 2}
    clock.advance(7 * DAY)
    assert counts() == {"1h": 0, "1d": 0, "7d": 0, "30d": 2}
    clock.advance(23 * DAY)
    assert counts() == {"1h": 0, "1d": 0, "7d": 0, "30d": 0}
    windows.record(False, 0.02)  # a slot reused after a wrap-around starts from zero
    totals = windows.totals(30 * DAY)
    assert (totals.count, totals.errors, totals.duration_sum) == (1, 0, 0.02)


def test_totals_give_ratios_mean_and_buckets_by_le() -> None:
    windows = RollingWindows([0.1, 0.5, 1.0], FakeClock(0.0))
    for failed, seconds in [(False, 0.1), (False, 0.2), (True, 0.5), (False, 2.0)]:
        windows.record(failed, seconds)
    totals = windows.totals(HOUR)
    assert totals.buckets == (1, 2, 0, 1)  # 0.1 is in le="0.1", 0.5 in le="0.5", 2.0 in +Inf
    assert (totals.error_ratio(), totals.success_ratio(), totals.mean()) == (0.25, 0.75, 0.7)
    empty = RollingWindows([0.1], FakeClock(0.0)).totals(HOUR)
    assert (empty.error_ratio(), empty.success_ratio(), empty.mean()) == (None, None, None)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ((18, 2, 0, 0), 0.375),  # rank 19 of 20 is half-way into (0.25, 0.5]
        ((19, 1, 0, 0), 0.25),  # rank 19 ends exactly at the le="0.25" bucket
        ((8, 1, 1, 0), 0.625),  # rank 9.5 of 10 is half-way into (0.5, 0.75]
        ((0, 0, 0, 4), 0.75),  # in +Inf: PromQL answers the highest finite bound
        ((10, 0, 0, 0), 0.2375),  # inside the first bucket, from 0
        ((0, 0, 0, 0), None),
    ],
)
def test_bucket_quantile_matches_promql_histogram_quantile(buckets: tuple[int, ...], expected: float | None) -> None:
    assert bucket_quantile(0.95, [0.25, 0.5, 0.75], buckets) == expected


def test_incidents_from_runs_and_from_samples() -> None:
    log = IncidentLog(max_kept=2)
    for at, ok in [
        (1, True),
        (2, False),
        (3, False),
        (4, True),
        (5, False),
        (6, True),
        (7, False),
        (8, True),
        (9, False),
    ]:
        log.record("api", ok, at)
    # only the last two closed ones are kept, and the open one is ongoing
    assert [(i.start, i.end) for i in log.since(0)] == [(5, 6), (7, 8), (9, None)]
    assert [(i.start, i.end) for i in log.since(6.5)] == [(7, 8), (9, None)]
    samples = [(10.0, 1), (11.0, 0), (12.0, 0), (13.0, 1), (14.0, 0)]
    found = incidents_from_samples("api", samples)
    assert [(i.start, i.end) for i in found] == [(11.0, 13.0), (14.0, None)]
    assert found[0].to_json(now=20.0) == {
        "check": "api",
        "start": "1970-01-01T00:00:11.000Z",
        "end": "1970-01-01T00:00:13.000Z",
        "duration_seconds": 2.0,
        "ongoing": False,
    }
    assert found[1].to_json(now=20.0)["duration_seconds"] == 6.0


def values(availability: float | None, error_rate: float | None, average: float | None, p95: float | None) -> dict:
    keys = ("availability", "error_rate", "average_response_seconds", "p95_response_seconds")
    return {key: {"1d": value} for key, value in zip(keys, (availability, error_rate, average, p95), strict=True)}


def test_targets_at_their_boundaries_follow_the_spec_comparisons() -> None:
    settings = SlaSettings()
    at_the_line = status_document(settings, values(0.995, 0.01, 1.0, 0.5), service="s", source="in-process")
    verdicts = {key: target["compliant"] for key, target in at_the_line["targets"].items()}
    # >= 99.5%, <= 1% (the spec's "Error Rate: ≤1%"), < 1 s, <= 500 ms
    assert verdicts == {
        "availability": True,
        "error_rate": True,
        "average_response_seconds": False,
        "p95_response_seconds": True,
    }
    assert at_the_line["status"] == "violated"
    inside = status_document(settings, values(0.999, 0.001, 0.2, 0.3), service="s", source="in-process")
    assert inside["status"] == "compliant"
    budgets = {key: target["error_budget_remaining"] for key, target in inside["targets"].items()}
    assert budgets == {
        "availability": 0.8,
        "error_rate": 0.9,
        "average_response_seconds": None,
        "p95_response_seconds": None,
    }
    assert inside["targets"]["availability"]["objective"] == ">= 0.995"
    # The P95's budget: 5% of requests may be slower than 500 ms; 1% are, so 80% of it is left.
    with_share = {**values(0.999, 0.001, 0.2, 0.3), "share_over_p95_target": {"1d": 0.01}}
    p95 = status_document(settings, with_share, service="s", source="in-process")["targets"]["p95_response_seconds"]
    assert p95["error_budget_remaining"] == 0.8
    no_traffic = status_document(settings, values(None, None, None, None), service="s", source="in-process")
    assert no_traffic["status"] == "unknown"
    assert {target["compliant"] for target in no_traffic["targets"].values()} == {None}


def test_targets_and_source_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import otelkit

    monkeypatch.setenv("OTELKIT_SLA__AVAILABILITY", "0.999")
    monkeypatch.setenv("OTELKIT_SLA__COMPLIANCE_WINDOW", "7d")
    handle = otelkit.init(metrics={"system_metrics": False}, prometheus={"enabled": False})
    assert (handle.settings.sla.availability, handle.settings.sla.compliance_window) == (0.999, "7d")
    assert handle.sla is not None and handle.sla.in_process
    handle.shutdown()
    monkeypatch.setenv("OTELKIT_SLA__AVAILABILITY", "1.5")
    monkeypatch.setenv("OTELKIT_SLA__PROMETHEUS_URL", "prometheus:9090")
    with pytest.raises(OtelkitConfigError) as caught:
        otelkit.init()
    message = str(caught.value)
    assert "setting sla.availability (OTELKIT_SLA__AVAILABILITY) = '1.5': Input should be less than 1" in message
    assert "setting sla.prometheus_url (OTELKIT_SLA__PROMETHEUS_URL) = 'prometheus:9090': must be an http://" in message


NEGATION = {">=": "<", "<=": ">", "<": ">="}


def test_service_sla_violated_fires_exactly_where_sla_status_says_violated() -> None:
    """The alert's rules are generated from stack/prometheus/rules_config.py, the endpoint's targets
    from SlaSettings: one rule per target, over the compliance window, at the opposite comparison."""
    import re
    from pathlib import Path

    import yaml

    from otelkit.sla import targets

    slo = Path(__file__).resolve().parents[2] / "stack" / "prometheus" / "rules" / "slo.yml"
    rules = [rule for group in yaml.safe_load(slo.read_text())["groups"] for rule in group["rules"]]
    violated = {
        rule["labels"]["sla_target"]: rule["expr"] for rule in rules if rule.get("alert") == "ServiceSLAViolated"
    }
    settings = SlaSettings()
    assert set(violated) == {target.key for target in targets(settings)}
    for target in targets(settings):
        match = re.search(r"(job:\S+_rate(\w+)) (<|>|>=|<=) ([0-9.]+)", violated[target.key])
        assert match is not None, violated[target.key]
        record, window, operator, threshold = match.groups()
        assert window == settings.compliance_window, record
        assert (operator, float(threshold)) == (NEGATION[target.comparison], target.threshold), record


def test_several_runners_samples_make_one_series_per_check_up_while_any_runner_sees_it_up() -> None:
    from otelkit.sla.prometheus import STALE_SECONDS, up_in_any

    # Runner A sees the check up throughout; runner B (its own network trouble) sees it down. Scraped
    # alternately, the samples merged as one series would flap: 1, 0, 1, 0 ... an incident per scrape.
    runner_a = [(100.0, 1.0), (115.0, 1.0), (130.0, 1.0)]
    runner_b = [(105.0, 0.0), (120.0, 0.0), (135.0, 0.0)]
    merged = up_in_any([runner_a, runner_b])
    assert merged == [(100.0, 1.0), (105.0, 1.0), (115.0, 1.0), (120.0, 1.0), (130.0, 1.0), (135.0, 1.0)]
    assert incidents_from_samples("api", merged) == []
    # Both down at once is an outage: one incident, from the moment the last runner saw it fail.
    both_down = up_in_any([[(100.0, 1.0), (115.0, 0.0), (130.0, 1.0)], [(105.0, 1.0), (120.0, 0.0), (135.0, 1.0)]])
    assert [(i.start, i.end) for i in incidents_from_samples("api", both_down)] == [(120.0, 130.0)]
    # Samples at the same instant are one point; a runner that stopped reporting no longer counts.
    assert up_in_any([[(100.0, 0.0)], [(100.0, 1.0)]]) == [(100.0, 1.0)]
    gone = up_in_any([[(100.0, 1.0)], [(110.0, 0.0), (100.0 + STALE_SECONDS + 1, 0.0)]])
    assert gone == [(100.0, 1.0), (110.0, 1.0), (100.0 + STALE_SECONDS + 1, 0.0)]
