"""The README's first command, ``./dev stack``, run as a new user runs it: in a fresh copy of the
repository (its tracked and not-ignored files, so no venv and no state), with nothing but what ``dev``
installs. Minutes: it creates the venv and installs otelkit from the package index."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelkit.devstack.stack import COMPONENT_NAMES

REPO = Path(__file__).resolve().parents[2]


def fresh_copy(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (raw.decode() for raw in listed)):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


@pytest.fixture
def clone() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="otelkit-clone-"))
    root.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, who must reach its data dir
    fresh_copy(root)
    yield root
    subprocess.run(["./dev", "stack", "down"], cwd=root, capture_output=True, timeout=120, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_dev_stack_from_a_fresh_copy_brings_up_a_healthy_stack(clone: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "OTELKIT_STATE_DIR")}
    result = subprocess.run(
        ["./dev", "stack", "--any-ports"], cwd=clone, env=env, capture_output=True, text=True, timeout=1500, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    healthy = {line.split()[0] for line in result.stdout.splitlines() if " healthy " in line}
    assert healthy == set(COMPONENT_NAMES), result.stdout
    assert (clone / ".otelkit" / "stack" / "ports.json").is_file()  # the default state dir, in the copy
    down = subprocess.run(["./dev", "stack", "down"], cwd=clone, env=env, capture_output=True, text=True, check=False)
    assert down.returncode == 0, down.stderr
    assert f"{len(COMPONENT_NAMES)} stopped" in down.stderr
