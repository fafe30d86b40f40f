"""The app the multi-process end-to-end tests serve with uvicorn; configured only by OTELKIT_* variables."""

from __future__ import annotations

from fastapi import FastAPI

import otelkit

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"pong": True}


otelkit.init(app)
