"""Detached processes with PID records, so a later ``otelkit stack`` run can find, reuse or stop them.

A record holds the PID, the process's start time from ``/proc`` (a recycled PID is not mistaken for
ours) and a fingerprint of its command line, environment and config files (a changed config means
restart, the same one means reuse). Each process leads its own session and process group, and is
stopped through the group, so helpers it forked (postgres backends, nginx workers) go with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from otelkit.devstack.state import StateDir


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    fingerprint: str
    stop_signal: int


def fingerprint(argv: list[str], env: dict[str, str], files: list[Path]) -> str:
    digest = hashlib.sha256(json.dumps([argv, sorted(env.items())]).encode())
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None if it is gone or a zombie."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_group(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[2])


def load(state: StateDir, name: str) -> ProcessRecord | None:
    raw = state.read_json("run", f"{name}.json")
    return ProcessRecord(**raw) if raw else None


def running(state: StateDir, name: str) -> ProcessRecord | None:
    """The record of ``name`` if that very process still runs."""
    record = load(state, name)
    if record is None or start_ticks(record.pid) != record.start_ticks:
        return None
    return record


def start(
    state: StateDir,
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    fingerprint_value: str,
    stop_signal: int = signal.SIGTERM,
) -> ProcessRecord:
    log = state.log(name).open("ab")
    log.write(f"\n==> {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    log.flush()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        cwd=cwd,
        start_new_session=True,
    )
    log.close()
    ticks = start_ticks(process.pid)
    record = ProcessRecord(name, process.pid, ticks or 0, fingerprint_value, int(stop_signal))
    state.write_json(record.__dict__, "run", f"{name}.json")
    return record


def stop(state: StateDir, name: str, timeout: float = 15.0) -> bool:
    """Stop ``name``'s process group (its stop signal, then KILL); True if something was running."""
    record = running(state, name)
    state.pid_record(name).unlink(missing_ok=True)
    if record is None:
        return False
    try:
        os.killpg(record.pid, record.stop_signal)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(record.pid):
        _reap(record.pid)
        time.sleep(0.1)
    if _group_alive(record.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        while _group_alive(record.pid):
            _reap(record.pid)
            time.sleep(0.05)
    _reap(record.pid)
    return True


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (what ``stop`` must leave empty)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_group(int(entry.name)) == pgid and start_ticks(int(entry.name)):
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (the API used in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
