"""The state directory: where the local stack keeps PID files, logs, data, configs and sink output.

Default ``.otelkit/stack`` in the repository (gitignored), or ``$OTELKIT_STATE_DIR``. Data (PostgreSQL,
Prometheus) lives here so it survives ``down``/``up``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
"""The otelkit checkout: the stack runs the repo's own config files (collector/, stack/, demo/)."""


def default_state_dir() -> Path:
    return Path(os.environ.get("OTELKIT_STATE_DIR") or REPO / ".otelkit" / "stack").resolve()


@dataclass(frozen=True)
class StateDir:
    root: Path

    def path(self, *parts: str) -> Path:
        """A directory or file under the state dir; parent directories are created."""
        target = self.root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def directory(self, *parts: str) -> Path:
        target = self.root.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def log(self, name: str) -> Path:
        return self.path("logs", f"{name}.log")

    def pid_record(self, name: str) -> Path:
        return self.path("run", f"{name}.json")

    def read_json(self, *parts: str) -> Any:
        path = self.root.joinpath(*parts)
        return json.loads(path.read_text()) if path.exists() else None

    def write_json(self, value: Any, *parts: str) -> None:
        path = self.path(*parts)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True))
        tmp.replace(path)
