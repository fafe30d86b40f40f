"""``otelkit synthetic``: one-shot exit codes for CI, and metrics and spans pushed over OTLP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from otelkit.cli import build_parser
from otelkit.testing import MetricsCapture
from tests.support.asgi_server import serve
from tests.support.otlp_sink import OtlpSink, start_grpc_sink
from tests.support.ports import free_port
from tests.synthetic.target import Target, wait_until

MAIN = "import sys; from otelkit.cli import main; sys.exit(main())"


@pytest.fixture
def target_url(otelkit_capture: MetricsCapture) -> Iterator[str]:
    target = Target({"flaky": ["error"]}, metrics={"system_metrics": False})
    with serve(target.app) as base_url:
        yield base_url


def otelkit_command(
    *args: str, env: dict[str, str] | None = None, missing: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``otelkit ARGS`` in a fresh interpreter; ``missing`` packages fail to import there, as if not installed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in missing)  # None in sys.modules: ImportError
    return subprocess.run(
        [sys.executable, "-c", MAIN.replace("import sys; ", f"import sys; {hide}"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "OTELKIT_METRICS__SYSTEM_METRICS": "false", **(env or {})},
        check=False,
    )


def checks_file(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "checks.yaml"
    checks = [{"name": name, "url": f"/scripted/{name}", "expect": {"json": {"$.status": "ok"}}} for name in names]
    path.write_text(yaml.safe_dump({"checks": checks}))
    return path


def test_once_exits_0_when_every_check_passes_and_pushes_metrics_and_spans(tmp_path: Path, target_url: str) -> None:
    sink = OtlpSink()
    server, port = start_grpc_sink(sink)
    try:
        result = otelkit_command(
            "synthetic", "run", "--once", "--config", str(checks_file(tmp_path, "health", "docs")),
            "--base-url", target_url,
            env={"OTELKIT_OTLP__ENDPOINT": f"http://127.0.0.1:{port}"},
        )  # fmt: skip
    finally:
        server.stop(grace=None)
    assert result.returncode == 0, result.stderr
    assert sorted(line.split()[:2] for line in result.stdout.splitlines()) == [["PASS", "docs"], ["PASS", "health"]]
    runs = sink.metrics()["synthetic_checks_total"][-1].sum.data_points
    counted = {(p.attributes[0].value.string_value, p.attributes[1].value.string_value): p.as_double for p in runs}
    assert {key: value for key, value in counted.items() if value} == {("health", "success"): 1, ("docs", "success"): 1}
    assert "synthetic_check_duration_seconds" in sink.metrics()
    assert sorted(name for name in sink.span_names() if name.startswith("synthetic")) == [
        "synthetic docs",
        "synthetic health",
    ]
    service = sink.metric_requests[-1].resource_metrics[0].resource.attributes
    assert {a.key: a.value.string_value for a in service}["service.name"] == "otelkit-synthetic"


def test_once_exits_1_when_a_check_fails(tmp_path: Path, target_url: str) -> None:
    result = otelkit_command(
        "synthetic", "run", "--once", "--quiet", "--config", str(checks_file(tmp_path, "health", "flaky")),
        "--base-url", target_url,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [line for line in result.stdout.splitlines() if "flaky" in line]
    assert "FAILURE flaky" in result.stdout and "status 500, expected 200" in result.stdout


def test_a_bad_checks_file_exits_2_naming_the_mistake(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"name": "health", "url": "/health", "interval_seconds": -1}]}))
    result = otelkit_command("synthetic", "validate", "--config", str(path), "--base-url", "http://127.0.0.1:1")
    assert result.returncode == 2
    assert f"checks file {path}: 1 error" in result.stderr
    assert "check 'health': field interval_seconds = -1: Input should be greater than 0" in result.stderr


def test_run_without_httpx_exits_2_naming_the_extra_to_install(tmp_path: Path) -> None:
    path = tmp_path / "checks.json"
    path.write_text(json.dumps({"checks": [{"name": "health", "url": f"http://127.0.0.1:{free_port()}/health"}]}))
    result = otelkit_command("synthetic", "run", "--once", "--config", str(path), missing=("httpx",))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "the synthetic runner needs httpx: pip install 'otelkit[synthetic]'"
    assert result.stdout == ""  # nothing ran


def test_the_command_line_is_registered() -> None:
    args = build_parser().parse_args(["synthetic", "run", "--config", "c.yaml", "--runs", "3", "--concurrency", "2"])
    assert (args.config, args.runs, args.concurrency, args.once) == ("c.yaml", 3, 2, False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["synthetic", "run", "--config", "c.yaml", "--once", "--runs", "3"])


def test_run_forever_serves_metrics_and_stops_cleanly_on_sigterm(tmp_path: Path, target_url: str) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    path = checks_file(tmp_path, "health")
    document = yaml.safe_load(path.read_text())
    document["checks"][0]["interval_seconds"] = 0.2
    path.write_text(yaml.safe_dump(document))
    command = [sys.executable, "-c", MAIN, "synthetic", "run", "--config", str(path), "--base-url", target_url]
    process = subprocess.Popen(
        [*command, "--metrics-port", str(port), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, "OTELKIT_METRICS__SYSTEM_METRICS": "false"},
    )
    try:

        def runs() -> float:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.HTTPError:
                return 0
            found = re.search(r'synthetic_checks_total\{check="health",result="success"\} (\S+)', text)
            return float(found.group(1)) if found else 0

        wait_until(lambda: runs() >= 3, "three runs counted on /metrics")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
