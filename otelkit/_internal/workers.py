"""Tell when this process is one of several server workers.

Under ``uvicorn --workers N`` or gunicorn, each worker has its own counters. A Prometheus
scrape of the embedded /metrics reaches whichever worker accepts the connection, so each
series jumps between workers' values and rates are garbage. Pushing over OTLP is correct:
every worker is its own ``instance`` and ``sum()`` adds them up.
"""

from __future__ import annotations

import os
import re

import psutil

_WORKERS_FLAG = re.compile(r"^(?:--workers|-w)(?:=(\d+))?$")


def worker_count() -> int | None:
    """The number of sibling workers, when the environment or the parent's command line says."""
    from_env = os.environ.get("WEB_CONCURRENCY", "")
    if from_env.isdigit() and int(from_env) > 1:
        return int(from_env)
    try:
        parent = psutil.Process().parent()
        argv = parent.cmdline() if parent is not None else []
    except (psutil.Error, OSError):
        return None
    return workers_in_argv(argv)


def workers_in_argv(argv: list[str]) -> int | None:
    """``--workers 4``, ``--workers=4`` or gunicorn's ``-w 4`` in a server's command line."""
    for index, arg in enumerate(argv):
        match = _WORKERS_FLAG.match(arg)
        if match is None:
            continue
        value = match.group(1) or (argv[index + 1] if index + 1 < len(argv) else "")
        if value.isdigit():
            return int(value)
    return None
