"""Tell when this process is one of several server workers.

Under ``uvicorn --workers N`` or gunicorn, each worker has its own counters. A Prometheus
scrape of the embedded /metrics reaches whichever worker accepts the connection, so each
series jumps between workers' values and rates are garbage. Pushing over OTLP is correct:
every worker is its own ``instance`` and ``sum()`` adds them up.
"""

from __future__ import annotations

import os
import re
import shlex

import psutil

_WORKERS_FLAG = re.compile(r"^(?:--workers|-w)(?:=(\d+))?$")
_GLUED_SHORT_FLAG = re.compile(r"^-w=?(\d+)$")  # gunicorn's -w4 (argparse also takes -w=4)


def worker_count() -> int | None:
    """The number of sibling workers, when the server's settings say, in the servers' own precedence.

    The parent's command line wins over ``GUNICORN_CMD_ARGS`` (gunicorn's arguments from the environment,
    which every worker inherits), which wins over ``WEB_CONCURRENCY`` (the default of both servers).
    """
    for source in (_from_parent_command_line, _from_gunicorn_cmd_args, _from_web_concurrency):
        count = source()
        if count is not None:
            return count
    return None


def _from_parent_command_line() -> int | None:
    try:
        parent = psutil.Process().parent()
        argv = parent.cmdline() if parent is not None else []
    except (psutil.Error, OSError):
        return None
    return workers_in_argv(argv)


def _from_gunicorn_cmd_args() -> int | None:
    try:
        return workers_in_argv(shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")))
    except ValueError:  # unbalanced quotes: gunicorn itself would refuse them
        return None


def _from_web_concurrency() -> int | None:
    value = os.environ.get("WEB_CONCURRENCY", "").strip()
    return int(value) if value.isdigit() else None


def workers_in_argv(argv: list[str]) -> int | None:
    """``--workers 4``, ``--workers=4`` or gunicorn's ``-w 4`` / ``-w4`` in a server's command line."""
    for index, arg in enumerate(argv):
        glued = _GLUED_SHORT_FLAG.match(arg)
        if glued is not None:
            return int(glued.group(1))
        match = _WORKERS_FLAG.match(arg)
        if match is None:
            continue
        value = match.group(1) or (argv[index + 1] if index + 1 < len(argv) else "")
        if value.isdigit():
            return int(value)
    return None
