"""``system_*`` metrics from psutil, read at collection time (no background thread).

Host figures serve the spec's CPU > 90 %, memory > 95 % and disk > 90 % alerts; process
figures tell which service on the host is responsible.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Protocol

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

logger = logging.getLogger("otelkit")

# Pseudo and container-overlay file systems whose usage says nothing about disks filling up
# (the root file system is reported whatever its type: see `mountpoints_to_report`).
_IGNORED_FSTYPES = frozenset({"squashfs", "tmpfs", "devtmpfs", "overlay", "proc", "sysfs", "nsfs", "autofs"})
ROOT = "/"


class Partition(Protocol):
    """What `mountpoints_to_report` reads of psutil's ``disk_partitions()`` entries."""

    mountpoint: str
    fstype: str


def mountpoints_to_report(partitions: Iterable[Partition]) -> list[str]:
    """``/`` first and always, then each other mount point of a real file system, once.

    In a container ``/`` is an ``overlay`` (skipped elsewhere: overlays of image layers say
    little), yet it is the disk a container fills up, and the spec's disk > 90 % alert needs it.
    """
    mountpoints = [ROOT]
    for partition in partitions:
        if partition.fstype not in _IGNORED_FSTYPES and partition.mountpoint not in mountpoints:
            mountpoints.append(partition.mountpoint)
    return mountpoints


class SystemMetrics:
    """Registers the observable instruments; each callback reads psutil once per collection."""

    def __init__(self, meter: Meter) -> None:
        self._process = psutil.Process(os.getpid())
        psutil.cpu_percent(interval=None)  # the first reading is meaningless; later ones span one collection
        self._process.cpu_percent(interval=None)
        gauge = meter.create_observable_gauge
        gauge("system_cpu_usage_percent", [self._guard(self._cpu)], unit="%", description="Host CPU busy time.")
        gauge(
            "system_memory_usage_percent",
            [self._guard(self._memory_percent)],
            unit="%",
            description="Host memory in use.",
        )
        gauge(
            "system_memory_used_bytes",
            [self._guard(self._memory_used)],
            unit="By",
            description="Host memory in use.",
        )
        gauge(
            "system_memory_total_bytes",
            [self._guard(self._memory_total)],
            unit="By",
            description="Host memory installed.",
        )
        gauge(
            "system_disk_usage_percent",
            [self._guard(self._disk_percent)],
            unit="%",
            description="File system space used, per mount point.",
        )
        gauge(
            "system_disk_used_bytes",
            [self._guard(self._disk_used)],
            unit="By",
            description="File system space used, per mount point.",
        )
        gauge(
            "system_disk_total_bytes",
            [self._guard(self._disk_total)],
            unit="By",
            description="File system size, per mount point.",
        )
        gauge(
            "system_process_resident_memory_bytes",
            [self._guard(self._rss)],
            unit="By",
            description="Resident memory of this process.",
        )
        gauge(
            "system_process_cpu_usage_percent",
            [self._guard(self._process_cpu)],
            unit="%",
            description="CPU used by this process since the last collection (100 = one core).",
        )
        gauge(
            "system_process_open_fds",
            [self._guard(self._open_fds)],
            unit="{file_descriptor}",
            description="Open file descriptors of this process.",
        )
        meter.create_observable_counter(
            "system_process_cpu_seconds_total",
            [self._guard(self._process_cpu_seconds)],
            unit="s",
            description="CPU time used by this process, user and system.",
        )

    def _guard(self, read: Callable[[], Iterable[Observation]]) -> Callable[[CallbackOptions], Iterable[Observation]]:
        """A failing reading (a vanished mount, a sandbox hiding /proc) is skipped, logged once."""
        failed = False

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            nonlocal failed
            try:
                return list(read())
            except (psutil.Error, OSError) as exc:
                if not failed:
                    failed = True
                    logger.warning("otelkit: %s unavailable: %s", read.__name__.strip("_"), exc)
                return []

        return callback

    def _cpu(self) -> Iterable[Observation]:
        yield Observation(psutil.cpu_percent(interval=None))

    def _memory_percent(self) -> Iterable[Observation]:
        yield Observation(psutil.virtual_memory().percent)

    def _memory_used(self) -> Iterable[Observation]:
        memory = psutil.virtual_memory()
        yield Observation(memory.total - memory.available)

    def _memory_total(self) -> Iterable[Observation]:
        yield Observation(psutil.virtual_memory().total)

    def _disk_usage(self) -> Iterable[tuple[str, psutil._common.sdiskusage]]:
        for mountpoint in mountpoints_to_report(psutil.disk_partitions(all=False)):
            try:
                yield mountpoint, psutil.disk_usage(mountpoint)
            except OSError:
                continue  # unmounted or unreadable since it was listed

    def _disk_percent(self) -> Iterable[Observation]:
        for mountpoint, usage in self._disk_usage():
            yield Observation(usage.percent, {"mountpoint": mountpoint})

    def _disk_used(self) -> Iterable[Observation]:
        for mountpoint, usage in self._disk_usage():
            yield Observation(usage.used, {"mountpoint": mountpoint})

    def _disk_total(self) -> Iterable[Observation]:
        for mountpoint, usage in self._disk_usage():
            yield Observation(usage.total, {"mountpoint": mountpoint})

    def _current_process(self) -> psutil.Process:
        """This process, even in a worker forked after `init()`."""
        if self._process.pid != os.getpid():
            self._process = psutil.Process(os.getpid())
            self._process.cpu_percent(interval=None)
        return self._process

    def _rss(self) -> Iterable[Observation]:
        yield Observation(self._current_process().memory_info().rss)

    def _process_cpu(self) -> Iterable[Observation]:
        yield Observation(self._current_process().cpu_percent(interval=None))

    def _open_fds(self) -> Iterable[Observation]:
        yield Observation(self._current_process().num_fds())

    def _process_cpu_seconds(self) -> Iterable[Observation]:
        times = self._current_process().cpu_times()
        yield Observation(times.user + times.system)
