"""Realistic load for the demo service, with incidents so that alerts fire and reach the sinks.

Steady phase: a mix of generations, payments, registrations and order look-ups, with the fake model's
own few failures (under the alert thresholds). Every ``--incident-every`` seconds, for
``--incident-length`` seconds, a share of generations hits an overloaded model and answers 503: about
10% of all requests fail, enough for ``HttpErrorRateHigh`` (> 5% over 5m, for 2m) to page.

    python -m demo.traffic --url http://127.0.0.1:8080 --rate 6
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

import httpx

PROMPTS = ["a red fox in snow", "a lighthouse at dusk", "a bowl of ramen, studio light", "a cat astronaut"]
PROVIDERS = ["stripe", "stripe", "stripe", "paypal", "adyen"]
SOURCES = ["web", "web", "ios", "android", "referral"]
OVERLOADED_SHARE = 0.33
"""Share of generations sent to an overloaded model during an incident. Cache hits (about 40%) never reach
the model, so about a fifth of all generations fail, ~10% of all requests: twice HttpErrorRateHigh's 5%,
so that it holds through the rule's 2 minutes (at 0.2 it was ~6.5%, and noise could reset its ``for``)."""
USERS = 2000
"""The user base: a few come back often, most now and then (``X-User-Id``, the demo's active users)."""


def some_user() -> dict[str, str]:
    """The request's user header: half the requests from a heavy-tailed few regulars, half from anyone."""
    regular = random.random() < 0.5
    user = min(USERS, int(random.paretovariate(0.8))) if regular else random.randint(1, USERS)
    return {"X-User-Id": f"user-{user}"}


def in_incident(elapsed: float, first_after: float, every: float, length: float) -> bool:
    """Incidents start ``first_after`` seconds in and then every ``every`` seconds, ``length`` seconds long."""
    if elapsed < first_after:
        return False
    return (elapsed - first_after) % every < length


async def one_request(client: httpx.AsyncClient, incident: bool) -> int:
    roll, user = random.random(), some_user()
    if roll < 0.5:
        # Varied prompts so that the Redis cache both hits and misses.
        prompt = f"{random.choice(PROMPTS)} #{random.randint(1, 40)}"
        overloaded = incident and random.random() < OVERLOADED_SHARE
        model = random.choice(["sdxl", "sdxl", "flux"])
        params: dict[str, str | bool] = {"prompt": prompt, "model": model, "overloaded": overloaded}
        response = await client.post("/generate", params=params, headers=user)
    elif roll < 0.7:
        amount = round(random.uniform(5, 120), 2)
        payment: dict[str, str | float] = {"provider": random.choice(PROVIDERS), "amount": amount}
        response = await client.post("/payments", params=payment, headers=user)
    elif roll < 0.85:
        response = await client.post("/registrations", params={"source": random.choice(SOURCES)}, headers=user)
    else:
        response = await client.get("/orders/recent", headers=user)
    return response.status_code


async def run(url: str, rate: float, first_after: float, every: float, length: float) -> None:
    started = time.monotonic()
    pending: set[asyncio.Task[int]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while True:
            incident = in_incident(time.monotonic() - started, first_after, every, length)
            task = asyncio.create_task(one_request(client, incident))
            pending.add(task)
            task.add_done_callback(pending.discard)
            task.add_done_callback(_report_transport_errors)
            # Poisson arrivals, with bursts of registrations at times filling the e-mail queue.
            await asyncio.sleep(random.expovariate(rate))


def _report_transport_errors(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        print(f"traffic: {task.exception()!r}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the demo service (through nginx)")
    parser.add_argument("--rate", type=float, default=6.0, help="requests per second, on average")
    parser.add_argument("--first-incident-after", type=float, default=60.0, help="seconds")
    parser.add_argument("--incident-every", type=float, default=1200.0, help="seconds")
    parser.add_argument("--incident-length", type=float, default=360.0, help="seconds")
    args = parser.parse_args(argv)
    print(f"traffic: {args.rate}/s to {args.url}", file=sys.stderr, flush=True)
    asyncio.run(run(args.url, args.rate, args.first_incident_after, args.incident_every, args.incident_length))


if __name__ == "__main__":
    main()
