"""A FastAPI service instrumented by otelkit whose error share the caller controls.

    python -m uvicorn tests.support.error_app:app --host 127.0.0.1 --port PORT

``GET /work`` answers 200; ``GET /work?fail=true`` answers 503. Metrics are on ``/metrics``.
"""

from __future__ import annotations

from fastapi import FastAPI, Response

import otelkit

app = FastAPI()
otelkit.init(app, service={"name": "checkout"})


@app.get("/work")
def work(fail: bool = False) -> Response:
    return Response("unavailable" if fail else "ok", status_code=503 if fail else 200)
