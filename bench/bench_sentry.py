"""What Sentry costs a traced service: the HTTP benchmark's otelkit-full beside its Sentry variants.

    python bench/bench_sentry.py [--seconds 8] [--rounds 3] [--connections 32] [--peers]

Same harness as bench/bench_http.py (one uvicorn process per variant, wrk, variants taking
turns within each round, medians), on uvloop + httptools. All variants trace 100 % of
requests and export to the otelkit collector when it is built. Sentry's DSN points at the
ingest double of the tests (tests/support/sentry_ingest.py) running in this process, which
accepts and discards (``otelkit-full-sentry``) or reads each request and never answers
(``otelkit-full-sentry-hung``, a Sentry that is down in the worst way). ``--peers`` adds
sentry-sdk configured by its own docs beside otelkit's tracing: its own transactions
(``sentry-native``) and its OTLPIntegration (``sentry-otlp``). Ratios compare medians with
otelkit-full in the same run; on a shared machine they are the figures to read.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_http import STACKS, Measurement, measure, start_collector  # noqa: E402
from tests.support.sentry_ingest import SentryIngest  # noqa: E402

VARIANTS = ["otelkit-full", "otelkit-full-sentry", "otelkit-full-sentry-hung"]
PEERS = ["sentry-native", "sentry-otlp"]
BASELINE = "otelkit-full"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--peers", action="store_true", help="also sentry-sdk's own transactions and OTLPIntegration")
    parser.add_argument("--no-export", action="store_true", help="no collector: spans for Sentry only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    variants = VARIANTS + (PEERS if args.peers else [])
    stack_name = "uvloop+httptools"
    with (
        tempfile.TemporaryDirectory() as tmp,
        SentryIngest(validate=False, keep=False) as up,
        SentryIngest(validate=False, keep=False) as hung,
    ):
        hung.hang()
        collector, otlp = (None, None) if args.no_export else start_collector(Path(tmp))
        dsn = {"otelkit-full-sentry-hung": hung.dsn}
        runs: dict[str, list[Measurement]] = {variant: [] for variant in variants}
        try:
            for _ in range(args.rounds):
                for variant in variants:
                    app_variant = variant.removesuffix("-hung")
                    extra_env = {"BENCH_SENTRY_DSN": dsn.get(variant, up.dsn)}
                    runs[variant].append(
                        measure(app_variant, STACKS[stack_name], otlp, args.seconds, args.connections, extra_env)
                    )
        finally:
            hung.release()
            if collector is not None:
                collector.terminate()
                collector.wait(10)
    report(runs, args, stack_name, exported=otlp is not None)


def report(runs: dict[str, list[Measurement]], args: argparse.Namespace, stack_name: str, exported: bool) -> None:
    base_rps = statistics.median(m.rps for m in runs[BASELINE])
    base_p99 = statistics.median(m.p99_ms for m in runs[BASELINE])
    up_p99 = statistics.median(m.p99_ms for m in runs["otelkit-full-sentry"])
    target = "collector + Sentry double" if exported else "Sentry double only"
    print(f"\n{stack_name}, 100% traced, export to {target}: median of {args.rounds} rounds, ", end="")
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s --latency")
    print(f"  {'variant':<26} {'req/s':>8} {'x full':>7} {'p99 ms':>7} {'x full':>7} {'RSS MiB':>8}   rounds req/s")
    for variant, measured in runs.items():
        rps = statistics.median(m.rps for m in measured)
        p99 = statistics.median(m.p99_ms for m in measured)
        rss = statistics.median(m.rss for m in measured) / 2**20
        rounds = " ".join(f"{m.rps:.0f}" for m in measured)
        print(
            f"  {variant:<26} {rps:8.0f} {rps / base_rps:7.2f} {p99:7.2f} {p99 / base_p99:7.2f} {rss:8.1f}   {rounds}"
        )
    hung_p99 = statistics.median(m.p99_ms for m in runs["otelkit-full-sentry-hung"])
    print(f"  p99 with the ingest hung / ingest up: {hung_p99 / up_p99:.2f}")


if __name__ == "__main__":
    main()
