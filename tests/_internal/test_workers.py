from __future__ import annotations

import logging

import pytest

import otelkit
from otelkit._internal import workers
from otelkit._internal.workers import worker_count, workers_in_argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["uvicorn", "app:app", "--workers", "4"], 4),
        (["python", "-m", "uvicorn", "app:app", "--workers=2"], 2),
        (["gunicorn", "-w", "3", "-k", "uvicorn.workers.UvicornWorker", "app:app"], 3),
        (["gunicorn", "-w4", "-k", "uvicorn.workers.UvicornWorker", "app:app"], 4),
        (["gunicorn", "-w=5", "app:app"], 5),
        (["gunicorn", "--workers=6", "app:app"], 6),
        (["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-wx", "app:app"], None),
        (["uvicorn", "app:app"], None),
        (["uvicorn", "app:app", "--workers"], None),
    ],
)
def test_workers_are_read_from_the_server_command_line(argv: list[str], expected: int | None) -> None:
    assert workers_in_argv(argv) == expected


@pytest.fixture
def parent_argv(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parent's command line worker_count() sees (the test runner's would be arbitrary)."""
    argv: list[str] = ["python", "-m", "pytest"]
    monkeypatch.setattr(workers, "_from_parent_command_line", lambda: workers_in_argv(argv))
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    return argv


@pytest.mark.parametrize(
    ("gunicorn_cmd_args", "expected"),
    [("-w4 --bind 0.0.0.0:80", 4), ("--bind '127.0.0.1:80' --workers 3", 3), ("--bind :80", None), ("-w 'x", None)],
)
def test_workers_are_read_from_gunicorn_cmd_args(
    monkeypatch: pytest.MonkeyPatch, parent_argv: list[str], gunicorn_cmd_args: str, expected: int | None
) -> None:
    monkeypatch.setenv("GUNICORN_CMD_ARGS", gunicorn_cmd_args)
    assert worker_count() == expected


def test_the_command_line_wins_over_gunicorn_cmd_args_which_wins_over_web_concurrency(
    monkeypatch: pytest.MonkeyPatch, parent_argv: list[str]
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "8")
    assert worker_count() == 8
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "-w 2")
    assert worker_count() == 2
    parent_argv.extend(["--workers", "1"])
    assert worker_count() == 1


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
