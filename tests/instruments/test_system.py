"""``system_*`` disk metrics: which mount points are reported, whatever the host's mount table."""

from __future__ import annotations

from typing import NamedTuple

import psutil
import pytest

import otelkit
from otelkit.instruments.system import mountpoints_to_report
from otelkit.testing import MetricsCapture


class sdiskpart(NamedTuple):
    device: str
    mountpoint: str
    fstype: str
    opts: str


CONTAINER_MOUNTS = [
    sdiskpart("overlay", "/", "overlay", "rw"),
    sdiskpart("tmpfs", "/dev/shm", "tmpfs", "rw"),
    sdiskpart("/dev/sdb1", "/data", "ext4", "rw"),
    sdiskpart("/dev/sdb1", "/data", "ext4", "rw"),  # bind-mounted twice
    sdiskpart("squashfs", "/snap/core", "squashfs", "ro"),
]


def test_root_is_reported_even_as_an_overlay_and_pseudo_file_systems_are_not() -> None:
    assert mountpoints_to_report(CONTAINER_MOUNTS) == ["/", "/data"]


def test_root_is_reported_once_when_it_is_a_real_file_system() -> None:
    host = [
        sdiskpart("/dev/sda1", "/", "ext4", "rw"),
        sdiskpart("/dev/sda2", "/home", "xfs", "rw"),
    ]
    assert mountpoints_to_report(host) == ["/", "/home"]


def test_root_is_reported_when_the_mount_table_is_empty() -> None:
    assert mountpoints_to_report([]) == ["/"]


def test_a_container_exposes_its_root_disk(otelkit_capture: MetricsCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mount table is the host's business: it is replaced by a container's (overlay root, tmpfs)."""
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: CONTAINER_MOUNTS[:2])
    otelkit.init(metrics={"system_metrics": True})
    total = otelkit_capture.value("system_disk_total_bytes", mountpoint="/")
    assert total == psutil.disk_usage("/").total
    assert 0 <= otelkit_capture.value("system_disk_usage_percent", mountpoint="/") <= 100
    assert 0 < otelkit_capture.value("system_disk_used_bytes", mountpoint="/") <= total
    assert {sample.labels["mountpoint"] for sample in otelkit_capture.series("system_disk_total_bytes")} == {"/"}
