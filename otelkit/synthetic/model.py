"""What a synthetic check is: one HTTP request, or several sharing variables, with expectations.

A check written as code::

    Check(name="api-health", url="https://api.example.com/health", expect={"json": {"$.status": "ok"}})

A multi-step check (create, then fetch what was created)::

    Check(name="create-and-fetch", steps=[
        {"name": "create", "method": "POST", "url": ".../items", "json": {"name": "probe"},
         "expect": {"status": 201}, "extract": {"item_id": "$.id"}},
        {"name": "fetch", "url": ".../items/${item_id}", "expect": {"json": {"$.name": "probe"}}},
    ])

Field names are those of the checks file (``synthetic/checks.yaml``); unknown fields are errors,
so a misspelt ``expect`` cannot silently check nothing.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from otelkit.synthetic import jsonpath
from otelkit.synthetic.templates import VARIABLE_NAME, render, variables_used

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CHECK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
"""Check names become the ``check`` label: short, no spaces."""

STEP_FIELDS = ("method", "url", "headers", "body", "json", "expect")
"""Fields a single-request check may write at its top level instead of under ``steps``."""


class Expectation(BaseModel):
    """What a response must look like for its step to pass."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: list[int] = Field(default_factory=lambda: [200])
    """Accepted status codes (one number or a list)."""
    body_contains: list[str] = Field(default_factory=list)
    """Substrings the body must contain (one string or a list)."""
    json_values: dict[str, Any] = Field(default_factory=dict, alias="json")
    """JSON path -> expected value, compared with ``==`` after parsing the body as JSON."""

    @field_validator("status", mode="before")
    @classmethod
    def _status_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("status")
    @classmethod
    def _status_codes(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("must list at least one status code")
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        return value

    @field_validator("body_contains", mode="before")
    @classmethod
    def _contains_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("json_values")
    @classmethod
    def _paths_parse(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            jsonpath.parse(path)
        return value


class Step(BaseModel):
    """One HTTP request of a check."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = ""
    method: HttpMethod = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(None, alias="json")
    expect: Expectation = Field(default_factory=Expectation)
    extract: dict[str, str] = Field(default_factory=dict)
    """Variable name -> JSON path in this step's response; later steps use ``${name}``."""
    timeout_seconds: float | None = Field(None, gt=0, allow_inf_nan=False)
    """This request's timeout (default: the check's ``timeout_seconds``)."""
    latency_budget_ms: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Slower than this and the step (so the check) counts as ``slow``, though it answered correctly."""

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        return validate_url(value)

    @field_validator("extract")
    @classmethod
    def _extract_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if not VARIABLE_NAME.fullmatch(name):
                raise ValueError(f"variable name {name!r} must be a letter or _ followed by letters, digits or _")
            jsonpath.parse(path)
        return value

    @model_validator(mode="after")
    def _one_body(self) -> Step:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give either body or json, not both")
        return self


class Check(BaseModel):
    """A named probe run every ``interval_seconds`` (± ``jitter`` of it); passes when every step does."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=CHECK_NAME_PATTERN, max_length=100)
    steps: list[Step] = Field(min_length=1)
    interval_seconds: float = Field(60.0, gt=0, allow_inf_nan=False)
    timeout_seconds: float = Field(10.0, gt=0, allow_inf_nan=False)
    """Per request, unless a step sets its own."""
    jitter: float = Field(0.1, ge=0, le=1, allow_inf_nan=False)
    """Each interval is stretched or shrunk by up to this fraction, so checks do not run in lockstep."""
    latency_budget_ms: float | None = Field(None, gt=0, allow_inf_nan=False)
    """For the whole check (all steps); slower counts as ``slow``."""

    @model_validator(mode="before")
    @classmethod
    def _single_request_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "steps" not in data and any(key in data for key in STEP_FIELDS):
            data = dict(data)
            step = {key: data.pop(key) for key in STEP_FIELDS if key in data}
            data["steps"] = [step]
        return data

    @model_validator(mode="after")
    def _steps_are_consistent(self) -> Check:
        extracted: set[str] = set()
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if not step.name:
                step.name = "request" if len(self.steps) == 1 else f"step{index + 1}"
            if step.name in seen:
                raise ValueError(f"two steps are named {step.name!r}")
            seen.add(step.name)
            used = variables_used([step.url, step.headers, step.body, step.json_body, step.expect.json_values])
            missing = sorted(used - extracted)
            if missing:
                raise ValueError(
                    f"step {step.name!r} uses {', '.join('${' + name + '}' for name in missing)}, "
                    "which no earlier step extracts"
                )
            extracted.update(step.extract)
        return self


def validate_url(value: str) -> str:
    """``value`` as the runner's HTTP client will need it: absolute http(s), a valid host and port, no spaces or
    control characters (run-time ``${variables}`` stand in as ``x``). Raises ValueError saying what is wrong."""
    probe = render(value, _AnyVariable())
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host (a path like /health needs base_url)")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"has an invalid port: {exc}") from None
    odd = next((char for char in probe if char.isspace() or not char.isprintable()), None)
    if odd is not None:
        raise ValueError(f"contains {odd!r}: encode spaces and control characters (%20 ...)")
    if not _HOST.fullmatch(parts.hostname) and not parts.netloc.rpartition("@")[2].startswith("["):
        raise ValueError(f"has an invalid host {parts.hostname!r}")
    _httpx_accepts(probe)
    return value


_HOST = re.compile(r"[\w.-]+")
"""A host name (international ones too) or an IPv4 address; IPv6 literals are bracketed and checked by httpx."""


def _httpx_accepts(url: str) -> None:
    """The runner's HTTP client must be able to build a request for ``url`` (without httpx the runner
    cannot start anyway, and says so)."""
    try:
        import httpx
    except ImportError:
        return
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None


class _AnyVariable(dict[str, Any]):
    """Stands in for every run-time variable while a URL's shape is validated."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return "x"

    def get(self, key: str, default: Any = None) -> Any:
        return "x"
