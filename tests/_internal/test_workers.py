from __future__ import annotations

import logging

import pytest

import otelkit
from otelkit._internal.workers import workers_in_argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["uvicorn", "app:app", "--workers", "4"], 4),
        (["python", "-m", "uvicorn", "app:app", "--workers=2"], 2),
        (["gunicorn", "-w", "3", "-k", "uvicorn.workers.UvicornWorker", "app:app"], 3),
        (["uvicorn", "app:app"], None),
        (["uvicorn", "app:app", "--workers"], None),
    ],
)
def test_workers_are_read_from_the_server_command_line(argv: list[str], expected: int | None) -> None:
    assert workers_in_argv(argv) == expected


def test_embedded_endpoint_under_several_workers_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        otelkit.init(metrics={"system_metrics": False})
    assert "one of 4 server workers" in caplog.text


def test_no_warning_when_pushing_over_otlp_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        otelkit.init(prometheus={"enabled": False}, metrics={"system_metrics": False})
    assert "server workers" not in caplog.text
