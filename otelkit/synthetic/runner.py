"""Schedule checks: once (CI smoke tests) or forever at their intervals, with jitter and a concurrency bound.

    runner = SyntheticRunner(load_checks("synthetic/checks.yaml"))   # records into otelkit's handle
    results = await runner.run_once()                                # every check once
    await runner.run_forever(stop_event)                             # until stop_event is set

Each result is recorded as ``synthetic_*`` metrics and a span tree through the active otelkit
handle (``otelkit.init()`` first), and, when that handle computes its SLA in process, into the
``/sla/uptime`` windows. Inside a service, `running()` runs the checks beside the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from otelkit._internal.log_once import log_exception_once
from otelkit.errors import OtelkitConfigError
from otelkit.synthetic.execute import CheckResult, run_check
from otelkit.synthetic.loader import INSTALL_EXTRA
from otelkit.synthetic.metrics import metrics_for
from otelkit.synthetic.model import Check

if TYPE_CHECKING:
    import httpx

    from otelkit.handle import Otelkit

ResultCallback = Callable[[CheckResult], None]


def next_delay(interval: float, jitter: float, rng: random.Random) -> float:
    """Seconds from one run's start to the next: ``interval`` stretched or shrunk by up to ``jitter``."""
    return interval * (1.0 + rng.uniform(-jitter, jitter))


def first_delay(interval: float, jitter: float, rng: random.Random) -> float:
    """Seconds before a check's first run: spread over ``jitter`` of its interval, so checks do not start together."""
    return interval * rng.uniform(0.0, jitter)


class SyntheticRunner:
    """Runs checks against their targets; at most ``concurrency`` checks are in flight at once."""

    def __init__(
        self,
        checks: Sequence[Check],
        *,
        handle: Otelkit | None = None,
        concurrency: int = 4,
        on_result: ResultCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise OtelkitConfigError(f"synthetic runner: concurrency = {concurrency!r}: must be at least 1")
        if not checks:
            raise OtelkitConfigError("synthetic runner: no checks to run")
        _httpx()  # fail here, not in the first run, when the synthetic extra is missing
        self.checks = list(checks)
        self.concurrency = concurrency
        self._handle = handle if handle is not None else _active_handle()
        self._metrics = metrics_for(self._handle)
        self._metrics.declare([check.name for check in self.checks])
        self._tracer = self._handle.tracer_provider.get_tracer("otelkit.synthetic")
        self._callbacks: list[ResultCallback] = [self._metrics.record]
        sla = getattr(self._handle, "sla", None)
        if sla is not None and sla.in_process:
            self._callbacks.append(sla.record_check)
        if on_result is not None:
            self._callbacks.append(on_result)
        self._rng = rng or random.Random()
        self._semaphore: asyncio.Semaphore | None = None

    async def run_once(self) -> list[CheckResult]:
        """Every check once, concurrently within the bound; results in the checks' order."""
        async with self._client() as client:
            return list(await asyncio.gather(*(self._run(check, client) for check in self.checks)))

    async def run_forever(self, stop: asyncio.Event, runs: int | None = None) -> None:
        """Run each check every ``interval_seconds`` (± jitter) until ``stop`` is set, or ``runs`` times each.

        Intervals run start to start; a check slower than its interval starts again as soon as it
        ends, never overlapping itself.
        """
        async with self._client() as client:
            await asyncio.gather(*(self._loop(check, client, stop, runs) for check in self.checks))

    async def _loop(self, check: Check, client: httpx.AsyncClient, stop: asyncio.Event, runs: int | None) -> None:
        loop = asyncio.get_running_loop()
        if await _sleep_or_stop(first_delay(check.interval_seconds, check.jitter, self._rng), stop):
            return
        done = 0
        while not stop.is_set():
            started = loop.time()
            await self._run(check, client)
            done += 1
            if runs is not None and done >= runs:
                return
            delay = next_delay(check.interval_seconds, check.jitter, self._rng) - (loop.time() - started)
            if await _sleep_or_stop(max(0.0, delay), stop):
                return

    async def _run(self, check: Check, client: httpx.AsyncClient) -> CheckResult:
        """One run of ``check``; whatever goes wrong stays with this check (logged once) and the others run on."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        async with self._semaphore:
            started_at = time.time()
            try:
                outcome = await run_check(check, client, self._tracer)
            except Exception as exc:
                log_exception_once(
                    f"synthetic-run:{check.name}", "otelkit: synthetic check %s failed to run", check.name
                )
                reason = f"the runner failed: {type(exc).__name__}: {exc}"
                outcome = CheckResult(check.name, "error", time.time() - started_at, started_at, reason)
        for callback in self._callbacks:
            try:
                callback(outcome)
            except Exception:
                log_exception_once(
                    f"synthetic-callback:{getattr(callback, '__qualname__', type(callback).__qualname__)}",
                    "otelkit: a synthetic result callback (%r) failed",
                    callback,
                )
        return outcome

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        httpx = _httpx()
        limits = httpx.Limits(max_connections=self.concurrency * 2, max_keepalive_connections=self.concurrency)
        self._semaphore = asyncio.Semaphore(self.concurrency)  # bound to the running loop
        async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
            yield client


@contextlib.asynccontextmanager
async def running(
    checks: Sequence[Check], *, concurrency: int = 4, handle: Otelkit | None = None
) -> AsyncIterator[SyntheticRunner]:
    """Run ``checks`` in the background for the duration of the block, e.g. in a FastAPI lifespan::

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with otelkit.synthetic.running(load_checks("synthetic/checks.yaml")):
            yield
    """
    runner = SyntheticRunner(checks, concurrency=concurrency, handle=handle)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run_forever(stop), name="otelkit-synthetic")
    try:
        yield runner
    finally:
        stop.set()
        await task


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> bool:
    """Sleep; True if ``stop`` was set meanwhile."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _active_handle() -> Otelkit:
    from otelkit._internal import state

    handle = state.current
    if handle is None:
        raise OtelkitConfigError("the synthetic runner records through otelkit: call otelkit.init() first")
    return handle


def _httpx():  # type: ignore[no-untyped-def]
    try:
        import httpx
    except ImportError:
        raise OtelkitConfigError(f"the synthetic runner needs httpx: {INSTALL_EXTRA}") from None
    return httpx
