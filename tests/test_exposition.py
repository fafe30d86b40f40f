"""The contract: what Prometheus scrapes from /metrics carries exactly the spec's names and label keys."""

from __future__ import annotations

from typing import NamedTuple

import psutil
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import otelkit

# name in the exposition -> (type, label keys). Written out by hand: this is the spec, not the code.
CONTRACT: dict[str, tuple[str, set[str]]] = {
    "generation_requests_total": ("counter", {"status", "model_type"}),
    "generation_duration_seconds": ("histogram", {"status", "model_type"}),
    "active_generations": ("gauge", {"model_type"}),
    "payment_requests_total": ("counter", {"provider", "status"}),
    "payment_amount_total": ("counter", {"provider", "currency"}),
    "user_registrations_total": ("counter", {"source"}),
    "active_users": ("gauge", {"timeframe"}),
    "queue_depth": ("gauge", {"queue"}),
    "system_cpu_usage_percent": ("gauge", set()),
    "system_memory_usage_percent": ("gauge", set()),
    "system_memory_used_bytes": ("gauge", set()),
    "system_memory_total_bytes": ("gauge", set()),
    "system_disk_usage_percent": ("gauge", {"mountpoint"}),
    "system_disk_used_bytes": ("gauge", {"mountpoint"}),
    "system_disk_total_bytes": ("gauge", {"mountpoint"}),
    "system_process_resident_memory_bytes": ("gauge", set()),
    "system_process_cpu_usage_percent": ("gauge", set()),
    "system_process_open_fds": ("gauge", set()),
    "system_process_cpu_seconds_total": ("counter", set()),
}


class _Partition(NamedTuple):
    device: str
    mountpoint: str
    fstype: str
    opts: str


@pytest.fixture
def exposition(monkeypatch: pytest.MonkeyPatch) -> str:
    # The host's mount table varies (a container has only an overlay root): use a fixed one.
    mounts = [_Partition("overlay", "/", "overlay", "rw"), _Partition("tmpfs", "/run", "tmpfs", "rw")]
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: mounts)
    app = FastAPI()
    otelkit.init(app, service={"name": "contract"})
    with otelkit.track_generation("sdxl"):
        pass
    otelkit.record_payment("stripe", "success", 12.5, "EUR")
    otelkit.record_registration("organic")
    otelkit.observe_active_users(lambda: {"1d": 3})
    otelkit.observe_queue_depth(lambda: {"emails": 4})
    return TestClient(app).get("/metrics").text


def _sample_names(family_type: str, name: str) -> set[str]:
    if family_type == "counter":
        return {name}
    if family_type == "histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return {name}


def test_every_contract_metric_has_its_exact_name_type_and_label_keys(exposition: str) -> None:
    samples: dict[str, set[frozenset[str]]] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            types[sample.name] = family.type
            samples.setdefault(sample.name, set()).add(frozenset(set(sample.labels) - {"le"}))
    for name, (family_type, label_keys) in CONTRACT.items():
        for sample_name in _sample_names(family_type, name):
            assert sample_name in samples, f"{sample_name} missing; exposed: {sorted(samples)}"
            assert types[sample_name] == family_type, f"{sample_name} is a {types[sample_name]}"
            assert samples[sample_name] == {frozenset(label_keys)}, f"{sample_name} labels {samples[sample_name]}"


def test_no_unit_or_total_suffix_surprises(exposition: str) -> None:
    exposed = {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}
    surprises = [n for n in exposed if n.endswith(("_total_total", "_seconds_seconds", "_bytes_bytes", "_ratio"))]
    assert surprises == []
    business_and_system = {
        n for n in exposed if n.split("_")[0] in {"generation", "active", "payment", "user", "queue", "system"}
    }
    expected = set().union(*(_sample_names(t, n) for n, (t, _) in CONTRACT.items()))
    assert business_and_system == expected


def test_exposition_carries_no_scope_labels_on_spec_metrics(exposition: str) -> None:
    assert "otel_scope_name" not in exposition


def test_disk_metrics_report_the_root_file_system_and_no_pseudo_one(exposition: str) -> None:
    for name in ("system_disk_usage_percent", "system_disk_used_bytes", "system_disk_total_bytes"):
        mountpoints = {
            sample.labels["mountpoint"]
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == name
        }
        assert mountpoints == {"/"}, f"{name}: {mountpoints}"
