"""A small shop backend instrumented exactly as the README tells users: ``otelkit.init(app, engine=..., redis=...)``.

Run by ``otelkit stack up`` (uvicorn demo.app:app) with ``OTELKIT_OTLP__ENDPOINT`` pointing at the collector.
``DEMO_DATABASE_URL`` (SQLAlchemy async URL) and ``DEMO_REDIS_URL`` say where PostgreSQL and Redis are.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import redis.asyncio
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy.ext.asyncio import create_async_engine

import otelkit

DATABASE_URL = os.environ.get("DEMO_DATABASE_URL", "postgresql+asyncpg://otelkit@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DEMO_REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL_FAILURE_RATE = float(os.environ.get("DEMO_MODEL_FAILURE_RATE", "0.03"))

metadata = sa.MetaData()
orders = sa.Table(
    "demo_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("amount", sa.Numeric(10, 2), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
)
email_queue: asyncio.Queue[str] = asyncio.Queue()
ACTIVE_TIMEFRAMES = {"1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
last_seen: dict[str, float] = {}
"""User id -> when their last request came (in memory: the counts start again with the process)."""


def note_user(x_user_id: Annotated[str | None, Header()] = None) -> None:
    """Every request may name its user (the traffic generator's ``X-User-Id``), as a session would."""
    if x_user_id:
        last_seen[x_user_id] = time.time()


def active_users() -> dict[str, float]:
    """Distinct users seen per timeframe, for ``active_users{timeframe}`` (the Business KPIs dashboard)."""
    now, seen = time.time(), tuple(last_seen.values())  # a copy: the metric reader calls from its thread
    return {timeframe: sum(1 for at in seen if now - at <= span) for timeframe, span in ACTIVE_TIMEFRAMES.items()}


class ModelOverloaded(RuntimeError):
    """The fake model's way of failing, as a real GPU pool does under load."""


async def fake_model(prompt: str, overloaded: bool) -> str:
    """Takes 50 ms to 1.5 s (longer prompts take longer) and fails now and then."""
    await asyncio.sleep(min(1.5, random.lognormvariate(-2.0, 0.6) + len(prompt) / 2000))
    if overloaded or random.random() < MODEL_FAILURE_RATE:
        raise ModelOverloaded("model pool overloaded")
    return prompt[::-1]


async def send_emails() -> None:
    """The background worker that drains the e-mail queue more slowly than bursts fill it."""
    while True:
        await email_queue.get()
        await asyncio.sleep(random.uniform(0.05, 0.4))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    worker = asyncio.create_task(send_emails())
    yield
    worker.cancel()
    await engine.dispose()
    await cache.aclose()


app = FastAPI(title="otelkit demo shop", lifespan=lifespan, dependencies=[Depends(note_user)])
engine = create_async_engine(DATABASE_URL, pool_size=5, max_overflow=5)
cache = redis.asyncio.Redis.from_url(REDIS_URL)
otelkit.init(app, engine=engine, redis=cache, service={"name": "demo", "version": "0.1.0"})
otelkit.observe_queue_depth(lambda: {"emails": email_queue.qsize()})
otelkit.observe_active_users(active_users)


@app.post("/generate")
async def generate(prompt: str, model: str = "sdxl", overloaded: bool = False) -> dict[str, str]:
    """``overloaded=true`` is how the traffic generator simulates an incident: the model fails, we answer 503."""
    cached = await cache.get(f"generation:{model}:{prompt}")
    if cached is not None:
        otelkit.record_cache_hit("generations")
        return {"result": cached.decode() if isinstance(cached, bytes) else cached, "cached": "yes"}
    otelkit.record_cache_miss("generations")
    try:
        async with otelkit.track_generation(model_type=model):
            result = await fake_model(prompt, overloaded)
    except ModelOverloaded as error:
        raise HTTPException(status_code=503, detail=str(error)) from error
    await cache.set(f"generation:{model}:{prompt}", result, ex=60)
    return {"result": result, "cached": "no"}


@app.post("/payments")
async def pay(provider: str, amount: float, currency: str = "EUR") -> dict[str, str]:
    """Card declines are a normal outcome (402); the row is written either way."""
    status = "success" if random.random() > 0.04 else "declined"
    async with engine.begin() as connection:
        await connection.execute(orders.insert().values(provider=provider, amount=amount, status=status))
    otelkit.record_payment(provider, status, amount, currency)
    if status != "success":
        raise HTTPException(status_code=402, detail="card declined")
    return {"status": status}


@app.post("/registrations")
async def register(source: str = "web") -> dict[str, int]:
    """A sign-up sends a welcome e-mail through the queue."""
    otelkit.record_registration(source)
    await email_queue.put("welcome")
    return {"queued": email_queue.qsize()}


@app.get("/orders/recent")
async def recent_orders() -> list[dict[str, object]]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(orders).order_by(orders.c.id.desc()).limit(10))
        return [{"id": row.id, "provider": row.provider, "status": row.status} for row in rows]
