"""``otelkit synthetic``: run uptime checks from a checks file.

    otelkit synthetic run --config synthetic/checks.yaml                 # forever, at each check's interval
    otelkit synthetic run --config synthetic/checks.yaml --once          # CI smoke test: exit 0 only if all pass
    otelkit synthetic validate --config synthetic/checks.yaml            # load and list, run nothing

Metrics and spans go through otelkit's pipeline as configured by ``OTELKIT_*`` variables
(``OTELKIT_OTLP__ENDPOINT=http://collector:4317``); ``--metrics-port`` also serves ``/metrics``.
Exit codes: 0 all passed (or stopped by SIGTERM/SIGINT), 1 a check failed, 2 bad configuration
(or a missing package: the runner needs ``pip install 'otelkit[synthetic]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from otelkit.errors import OtelkitConfigError
from otelkit.synthetic import CheckResult, SyntheticRunner, load_checks

DEFAULT_SERVICE_NAME = "otelkit-synthetic"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "synthetic",
        help="run synthetic uptime checks",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)

    run = actions.add_parser("run", help="run the checks (forever, or --once)")
    _config_arguments(run)
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run every check once and exit (1 if any failed)")
    mode.add_argument(
        "--runs", type=_positive_int, metavar="N", help="run every check N times at its interval, then exit"
    )
    run.add_argument("--concurrency", type=_positive_int, default=4, help="checks in flight at once (default 4)")
    run.add_argument("--service-name", help=f"service.name of the runner's telemetry (default {DEFAULT_SERVICE_NAME})")
    run.add_argument("--metrics-port", type=int, help="also serve Prometheus /metrics on this port")
    run.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)")
    run.add_argument("--quiet", action="store_true", help="print failures only")
    run.set_defaults(handler=run_command)

    validate = actions.add_parser("validate", help="load the checks file and list its checks")
    _config_arguments(validate)
    validate.set_defaults(handler=validate_command)


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="checks file (.yaml, .yml or .json)")
    parser.add_argument("--base-url", help="joined to URLs that start with '/' (overrides the file's base_url)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def validate_command(args: argparse.Namespace) -> int:
    try:
        checks = load_checks(args.config, base_url=args.base_url)
    except OtelkitConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    for check in checks:
        steps = ", ".join(f"{step.method} {step.url}" for step in check.steps)
        print(f"{check.name}: every {check.interval_seconds:g} s: {steps}")
    return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    import otelkit

    try:
        checks = load_checks(args.config, base_url=args.base_url)
        handle = otelkit.init(**_init_overrides(args))
    except OtelkitConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    metrics_server = None
    try:
        if args.metrics_port is not None and handle.prometheus_registry is not None:
            from prometheus_client import start_http_server

            metrics_server, _ = start_http_server(
                args.metrics_port, addr=args.metrics_host, registry=handle.prometheus_registry
            )
        failed: list[CheckResult] = []

        def report(outcome: CheckResult) -> None:
            if not outcome.success:
                failed.append(outcome)
            if not outcome.success or not args.quiet:
                print(_line(outcome), flush=True)

        runner = SyntheticRunner(checks, handle=handle, concurrency=args.concurrency, on_result=report)
        if args.once:
            asyncio.run(runner.run_once())
        else:
            asyncio.run(_run_until_signal(runner, args.runs))
        if args.once or args.runs:
            return EXIT_FAILED if failed else EXIT_OK
        return EXIT_OK
    except OtelkitConfigError as exc:  # e.g. httpx missing: the message names the extra to install
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        handle.shutdown()


async def _run_until_signal(runner: SyntheticRunner, runs: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.run_forever(stop, runs=runs)


def _init_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {"prometheus": {"enabled": args.metrics_port is not None}, "sla": {"enabled": False}}
    if args.service_name:
        overrides["service"] = {"name": args.service_name}
    elif not (os.environ.get("OTELKIT_SERVICE__NAME") or os.environ.get("OTEL_SERVICE_NAME")):
        overrides["service"] = {"name": DEFAULT_SERVICE_NAME}
    return overrides


def _line(outcome: CheckResult) -> str:
    verdict = "PASS" if outcome.success else outcome.result.upper()
    text = f"{verdict:<8}{outcome.check}  {outcome.seconds * 1000:.0f} ms"
    return f"{text}  {outcome.reason}" if outcome.reason else text
