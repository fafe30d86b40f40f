"""A FastAPI service whose answers follow a script (serve it with tests.support.asgi_server.serve).

``GET /scripted/{name}`` answers each request with the next behaviour of ``script[name]``
(``ok`` once the script runs out):

| behaviour | answer | a check expecting 200 and ``$.status == "ok"``, timeout 2 s, budget 600 ms, sees |
|---|---|---|
| ``ok`` | 200 ``{"status": "ok"}`` at once | success |
| ``error`` | 500 ``{"status": "error"}`` at once | failure |
| ``wrong`` | 200 ``{"status": "degraded"}`` at once | failure |
| ``slow`` | 200 ``{"status": "ok"}`` after 1.2 s | slow |
| ``hang`` | 200 ``{"status": "ok"}`` after 2.6 s | timeout |

``POST /items`` and ``GET /items/{id}`` (both wanting ``Authorization: Bearer s3cret``) make a
multi-step check; ``GET /gate`` holds each request 50 ms and counts how many overlap.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Response

import otelkit
from tests.support.asgi_server import serve

__all__ = ["TOKEN", "Target", "serve", "wait_until"]  # serve: tests/sla imports it from here

TOKEN = "s3cret"
DELAYS = {"slow": 1.2, "hang": 2.6}
"""Each 0.6 s or more from the budget and the timeout of the checks the tests make: an answer "at once"
may take a few hundred milliseconds on a loaded machine (tests running in parallel), and must still
be a success."""


class Target:
    """The app, its script, and what it observed."""

    def __init__(self, script: dict[str, list[str]] | None = None, **init: Any) -> None:
        self.script = {name: list(steps) for name, steps in (script or {}).items()}
        self.app = FastAPI()
        self.handle = otelkit.init(self.app, **init)
        self.items: dict[int, str] = {}
        self.fetched: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._routes()

    def _routes(self) -> None:
        app = self.app

        @app.get("/scripted/{name}")
        async def scripted(name: str) -> Response:
            queue = self.script.get(name) or []
            behaviour = queue.pop(0) if queue else "ok"
            if behaviour in DELAYS:
                await asyncio.sleep(DELAYS[behaviour])
            status, body = {"error": (500, "error"), "wrong": (200, "degraded")}.get(behaviour, (200, "ok"))
            return Response(f'{{"status": "{body}"}}', status_code=status, media_type="application/json")

        @app.post("/items", status_code=201)
        async def create(item: dict[str, str], authorization: str = Header("")) -> dict[str, Any]:
            _authorize(authorization)
            item_id = len(self.items) + 1
            self.items[item_id] = item["name"]
            return {"id": item_id}

        @app.get("/items/{item_id}")
        async def fetch(item_id: int, authorization: str = Header("")) -> dict[str, Any]:
            _authorize(authorization)
            self.fetched.append(item_id)
            if item_id not in self.items:
                raise HTTPException(404)
            return {"id": item_id, "name": self.items[item_id]}

        @app.get("/gate")
        async def gate() -> dict[str, str]:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(0.05)
            finally:
                self.in_flight -= 1
            return {"status": "ok"}


def _authorize(header: str) -> None:
    if header != f"Bearer {TOKEN}":
        raise HTTPException(401)


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    """Poll ``condition()`` until true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached after {timeout} s")
        time.sleep(0.02)
