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
otelkit-full in the same run; on a shared machine they are the figures to read, and the server's
CPU time per request (all its threads, export included) is steadier than req/s.
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

from bench.bench_http import STACKS, Measurement, measure, paired_ratio, start_collector  # noqa: E402
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
    def median(variant: str, field: str) -> float:
        return statistics.median(getattr(m, field) for m in runs[variant])

    target = "collector + Sentry double" if exported else "Sentry double only"
    print(f"\n{stack_name}, 100% traced, export to {target}: median of {args.rounds} rounds, ", end="")
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s --latency")
    header = ("variant", "req/s", "x full", "CPU us/req", "x full", "p99 ms", "RSS MiB")
    print("  {:<26} {:>7} {:>6} {:>10} {:>6} {:>7} {:>7}   req/s by round".format(*header))
    for variant, measured in runs.items():
        rps, cpu = median(variant, "rps"), median(variant, "cpu_us")
        rps_ratio, cpu_ratio = (
            paired_ratio(runs, variant, BASELINE, "rps"),
            paired_ratio(runs, variant, BASELINE, "cpu_us"),
        )
        rounds = " ".join(f"{m.rps:.0f}" for m in measured)
        print(
            f"  {variant:<26} {rps:7.0f} {rps_ratio:6.2f} {cpu:10.1f} {cpu_ratio:6.2f} "
            f"{median(variant, 'p99_ms'):7.1f} {median(variant, 'rss') / 2**20:7.1f}   {rounds}"
        )
    hung_over_up = paired_ratio(runs, "otelkit-full-sentry-hung", "otelkit-full-sentry", "p99_ms")
    print(f"  p99 with the ingest hung / ingest up: {hung_over_up:.2f} (ratios: median of each round's own)")


if __name__ == "__main__":
    main()
