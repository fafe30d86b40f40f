"""Where the stack's programs are, checked before anything starts (never a half-started stack)."""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
from pathlib import Path

from otelkit.devstack.state import REPO

DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "prometheus-nginx-exporter": "prometheus-nginx-exporter",
    "redis-server": "redis-server",
    "nginx": "nginx",
    "runuser": "util-linux",
}


class MissingProgram(RuntimeError):
    """A program the stack needs is not installed; the message names the Debian package."""


def find(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    package = DEBIAN_PACKAGES.get(name, name)
    raise MissingProgram(f"{name} not found: install the Debian package {package} (./dev stack installs it)")


def postgres(name: str) -> str:
    """initdb/postgres of the newest installed PostgreSQL (Debian keeps them off PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise MissingProgram(f"{name} not found: install the Debian package postgresql (./dev stack installs it)")
    return found[-1]


def collector() -> str:
    """The otelkit collector from collector/build.sh (instant when cached, minutes to build)."""
    result = subprocess.run(["bash", str(REPO / "collector" / "build.sh")], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MissingProgram(f"collector/build.sh failed:\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def python() -> str:
    """The environment's interpreter under one stable name (sys.executable varies with how we were
    launched, python or python3, and a different command line would restart the process)."""
    return str(Path(sys.prefix) / "bin" / "python")
