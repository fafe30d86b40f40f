"""The otelkit collector distribution, built (or taken from the cache) by collector/build.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = REPO / "collector"


def collector_binary() -> Path:
    """Path of the built binary; the first build takes minutes, a cached one milliseconds."""
    result = subprocess.run(
        ["bash", str(COLLECTOR_DIR / "build.sh")], capture_output=True, text=True, timeout=1800, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"collector/build.sh failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip())
