"""Log a recurring failure once: telemetry errors must be visible but must not flood the log."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("otelkit")
_seen: set[str] = set()
_lock = threading.Lock()


def _first_time(key: str) -> bool:
    with _lock:
        if key in _seen:
            return False
        _seen.add(key)
        return True


def log_exception_once(key: str, message: str, *args: object) -> None:
    """``logger.exception`` the first time ``key`` fails in this process, silence after."""
    if _first_time(key):
        logger.exception(message + " (logged once; later failures of this kind are silent)", *args)


def log_once(key: str, message: str, *args: object) -> None:
    """``logger.warning`` the first time ``key`` happens in this process, silence after."""
    if _first_time(key):
        logger.warning(message + " (logged once)", *args)
