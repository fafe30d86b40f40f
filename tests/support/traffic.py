"""Steady HTTP traffic against a service, with an exact share of failing requests."""

from __future__ import annotations

import threading
import time

import httpx


class Traffic:
    """``failing`` of every ``per`` requests ask for an error (e.g. 3 of 50 = 6%) until `stop_errors()`."""

    def __init__(self, url: str, *, per_second: float, failing: int, per: int) -> None:
        self.url, self.interval, self.failing, self.per = url, 1 / per_second, failing, per
        self.sent = 0
        self.failed_on_purpose = 0
        self.unexpected: list[str] = []
        self._errors = threading.Event()
        self._errors.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def stop_errors(self) -> None:
        self._errors.clear()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                fail = self._errors.is_set() and self.sent % self.per < self.failing
                try:
                    response = client.get(self.url, params={"fail": "true"} if fail else None)
                    if response.status_code != (503 if fail else 200):
                        self.unexpected.append(f"{response.status_code} for fail={fail}")
                except httpx.HTTPError as error:
                    self.unexpected.append(repr(error))
                self.sent += 1
                self.failed_on_purpose += fail
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
