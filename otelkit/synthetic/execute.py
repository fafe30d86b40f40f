"""Run one check: its steps in order over HTTP, each in a CLIENT span, stopping at the first that fails.

Every run ends in exactly one result, the ``result`` label of ``synthetic_checks_total``:

- ``success``: every step answered as expected within its budgets;
- ``failure``: a step answered, but not as expected (status, body, JSON value, missing variable);
- ``slow``: every answer was right, but a step or the whole check overran its latency budget;
- ``timeout``: a request got no complete answer within its timeout;
- ``error``: a request could not be made (connection refused, DNS, TLS ...).

The W3C ``traceparent`` header goes with each request, so the service's own spans join the
check's trace.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelkit.synthetic import jsonpath
from otelkit.synthetic.model import Check, Expectation, Step
from otelkit.synthetic.templates import render

if TYPE_CHECKING:
    import httpx

Result = Literal["success", "failure", "slow", "timeout", "error"]
RESULTS: tuple[Result, ...] = ("success", "failure", "slow", "timeout", "error")
_PROPAGATOR = TraceContextTextMapPropagator()
_BODY_EXCERPT = 120


@dataclass(frozen=True)
class StepResult:
    name: str
    result: Result
    seconds: float
    status_code: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class CheckResult:
    check: str
    result: Result
    seconds: float
    started_at: float
    """Wall-clock start (``time.time()``), for incidents."""
    reason: str = ""
    steps: list[StepResult] = field(default_factory=list)
    span_context: SpanContext | None = field(default=None, compare=False, repr=False)
    """The run's span, ended by now: the duration is recorded under it so its exemplar links to the trace."""

    @property
    def success(self) -> bool:
        return self.result == "success"


async def run_check(check: Check, client: httpx.AsyncClient, tracer: Tracer) -> CheckResult:
    """Run ``check`` once; never raises for anything the target does."""
    started_at = time.time()
    started = time.perf_counter()
    variables: dict[str, Any] = {}
    steps: list[StepResult] = []
    with tracer.start_as_current_span(
        f"synthetic {check.name}", kind=SpanKind.INTERNAL, attributes={"synthetic.check.name": check.name}
    ) as span:
        result: Result = "success"
        reason = ""
        for step in check.steps:
            outcome = await _run_step(check, step, client, tracer, variables)
            steps.append(outcome)
            if outcome.result != "success" and result in ("success", "slow"):
                result, reason = outcome.result, f"step {step.name}: {outcome.reason}"
            if outcome.result not in ("success", "slow"):
                break
        seconds = time.perf_counter() - started
        budget = check.latency_budget_ms
        if result == "success" and budget is not None and seconds * 1000 > budget:
            result, reason = "slow", f"took {seconds * 1000:.0f} ms, over the check's budget of {budget:g} ms"
        span.set_attribute("synthetic.check.result", result)
        if result != "success":
            span.set_status(Status(StatusCode.ERROR, reason))
    return CheckResult(check.name, result, seconds, started_at, reason, steps, span.get_span_context())


async def _run_step(
    check: Check, step: Step, client: httpx.AsyncClient, tracer: Tracer, variables: dict[str, Any]
) -> StepResult:
    import httpx

    url = render(step.url, variables)
    with tracer.start_as_current_span(step.method, kind=SpanKind.CLIENT, attributes=_attributes(step, url)) as span:
        timeout = step.timeout_seconds or check.timeout_seconds
        started = time.perf_counter()
        try:
            headers = {key: str(value) for key, value in render(step.headers, variables).items()}
            _PROPAGATOR.inject(headers)
            request = client.build_request(
                step.method,
                url,
                headers=headers,
                content=render(step.body, variables) if step.body is not None else None,
                json=render(step.json_body, variables) if step.json_body is not None else None,
                timeout=timeout,
            )
        except Exception as exc:  # an extracted variable made a URL or body no request can carry: this run's error
            reason = f"cannot build the request: {type(exc).__name__}: {exc}"
            return _ended(span, StepResult(step.name, "error", 0.0, None, reason))
        try:
            response = await client.send(request)
        except httpx.TimeoutException as exc:
            seconds = time.perf_counter() - started
            return _ended(
                span, StepResult(step.name, "timeout", seconds, None, f"no answer in {timeout:g} s ({exc!r})")
            )
        except httpx.HTTPError as exc:
            seconds = time.perf_counter() - started
            return _ended(span, StepResult(step.name, "error", seconds, None, f"{type(exc).__name__}: {exc}"))
        seconds = time.perf_counter() - started
        span.set_attribute("http.response.status_code", response.status_code)
        problem = _unmet(step.expect, response, variables)
        if problem is None:
            problem = _extract(step, response, variables)
        if problem is not None:
            return _ended(span, StepResult(step.name, "failure", seconds, response.status_code, problem))
        budget = step.latency_budget_ms
        if budget is not None and seconds * 1000 > budget:
            reason = f"took {seconds * 1000:.0f} ms, over its budget of {budget:g} ms"
            return _ended(span, StepResult(step.name, "slow", seconds, response.status_code, reason))
        return StepResult(step.name, "success", seconds, response.status_code)


def _attributes(step: Step, url: str) -> dict[str, Any]:
    """The CLIENT span's attributes: no query, no userinfo (they may carry secrets); never raises."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return {"http.request.method": step.method, "synthetic.step.name": step.name}
    return {
        "http.request.method": step.method,
        "url.full": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}",
        "server.address": parts.hostname or "",
        "server.port": port,
        "synthetic.step.name": step.name,
    }


def _ended(span: trace.Span, outcome: StepResult) -> StepResult:
    span.set_status(Status(StatusCode.ERROR, outcome.reason))
    span.set_attribute("synthetic.step.result", outcome.result)
    return outcome


def _unmet(expect: Expectation, response: httpx.Response, variables: dict[str, Any]) -> str | None:
    """Why the response does not meet ``expect``, or None."""
    if response.status_code not in expect.status:
        wanted = " or ".join(map(str, expect.status))
        return f"status {response.status_code}, expected {wanted}{_excerpt(response.text)}"
    for needle in expect.body_contains:
        if needle not in response.text:
            return f"body does not contain {needle!r}{_excerpt(response.text)}"
    if expect.json_values:
        document, problem = _json(response)
        if problem is not None:
            return problem
        for path, expected in expect.json_values.items():
            wanted = render(expected, variables)
            try:
                found = jsonpath.find(document, path)
            except jsonpath.PathNotFound as exc:
                return f"{path}: {exc}"
            if found != wanted:
                return f"{path} is {found!r}, expected {wanted!r}"
    return None


def _extract(step: Step, response: httpx.Response, variables: dict[str, Any]) -> str | None:
    if not step.extract:
        return None
    document, problem = _json(response)
    if problem is not None:
        return problem
    for name, path in step.extract.items():
        try:
            variables[name] = jsonpath.find(document, path)
        except jsonpath.PathNotFound as exc:
            return f"cannot extract {name} from {path}: {exc}"
    return None


def _json(response: httpx.Response) -> tuple[Any, str | None]:
    try:
        return response.json(), None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, f"body is not JSON{_excerpt(response.text)}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    return f" (body: {text[:_BODY_EXCERPT]!r}{'...' if len(text) > _BODY_EXCERPT else ''})"
