"""The two PagerDuty Events API v2 doubles (the stack's sink, the tests' double) give PagerDuty's answers,
and the same ones: both serve ``pagerduty_events.response_for``."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from otelkit.devstack.sinks import JsonLines, _http_handler
from tests.support.pagerduty import PagerDutyDouble

VALID: dict[str, Any] = {
    "routing_key": "0" * 32,
    "event_action": "trigger",
    "dedup_key": "group-1",
    "payload": {"summary": "[FIRING:1] ServiceDown demo (critical)", "source": "am", "severity": "critical"},
}


def post(url: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=raw, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    records = tmp_path / "pagerduty.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(JsonLines(records), JsonLines(tmp_path / "hb")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/enqueue", records
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("raw", "status", "errors"),
    [
        (json.dumps(VALID).encode(), 202, None),
        (json.dumps({**VALID, "routing_key": "short"}).encode(), 400, ["'routing_key' must be a 32-character string"]),
        (json.dumps({**VALID, "payload": {**VALID["payload"], "severity": "high"}}).encode(), 400, None),
        (b"not json", 400, ["body is not JSON"]),
        (b"[]", 400, ["event must be a JSON object"]),
    ],
)
def test_sink_and_double_answer_alike(
    sink: tuple[str, Path], raw: bytes, status: int, errors: list[str] | None
) -> None:
    sink_url, records = sink
    with PagerDutyDouble() as double:
        from_double = post(double.url, raw)
        recorded = double.events[-1]
    from_sink = post(sink_url, raw)
    assert from_sink == from_double
    assert from_sink[0] == status
    if status == 202:
        assert from_sink[1] == {"status": "success", "message": "Event processed", "dedup_key": "group-1"}
        assert recorded.errors == []
    else:
        assert from_sink[1]["status"] == "invalid event" and from_sink[1]["message"] == "Event object is invalid"
        assert from_sink[1]["errors"] and recorded.errors == from_sink[1]["errors"]
        if errors is not None:
            assert from_sink[1]["errors"] == errors
    line = json.loads(records.read_text())
    assert line["errors"] == from_sink[1].get("errors", [])
