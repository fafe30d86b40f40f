"""The base install (no extras) imports otelkit and runs its metrics; extras are needed only where used."""

from __future__ import annotations

import subprocess
import sys
import textwrap

EXTRAS_ONLY = ("starlette", "fastapi", "sqlalchemy", "redis", "httpx", "yaml", "psycopg", "asyncpg")


def run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing any extra's package fails."""
    blocker = f"import sys\nfor name in {EXTRAS_ONLY!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_the_sdk_core_needs_no_extra() -> None:
    result = run_without_extras(
        """
        import otelkit
        from prometheus_client import generate_latest

        handle = otelkit.init(metrics={"system_metrics": False})
        otelkit.record_payment("stripe", "success", 5, "EUR")
        print(generate_latest(handle.prometheus_registry).decode())
        handle.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert 'payment_requests_total{provider="stripe",status="success"} 1.0' in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_without_extras("import starlette")
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_the_command_line_names_the_extra_a_sub_command_lacks() -> None:
    help_text = run_without_extras("from otelkit.cli import main\nmain(['--help'])")
    assert help_text.returncode == 0 and "synthetic" in help_text.stdout, help_text.stderr
    for args in (["stack", "up"], ["stack", "--help"], ["stack", "up", "--any-ports"], ["stack"]):
        stack = run_without_extras(f"import sys\nfrom otelkit.cli import main\nsys.exit(main({args!r}))")
        assert stack.returncode == 2, (args, stack.stderr)
        assert stack.stderr.strip() == "otelkit stack needs the Python package 'yaml': pip install 'otelkit[dev]'"
