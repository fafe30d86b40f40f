"""HTTP throughput of otelkit against a bare app and two peers, under wrk, in one run.

    python bench/bench_http.py [--seconds 8] [--rounds 3] [--connections 32] [--variants A,B,..]
        [--stacks asyncio+h11,uvloop+httptools] [--versus A,B]

Each variant runs in its own uvicorn process (one worker) on a free loopback port, on two
stacks: the default (asyncio + h11) and uvloop + httptools. Variants take turns within each
round, so drift on a shared machine hits them alike; the figure is the median of the rounds,
and the ratio compares it with the bare app's median in the same run. The server's CPU time
per request (all its threads, export included) is printed too, with bare's divided by it:
on a shared machine it moves less than req/s, and the two ratios agree when the server is the
bottleneck. Ratios are the median of each round's own ratio (``paired_ratio``). Exporting variants send
to the otelkit collector (collector/build.sh) when it is built, so span export costs are real; the
collector's CPU time per request ("coll us") is printed too, since it runs on the same cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ["bare", "otelkit-metrics", "otelkit-full", "instrumentator", "otel-plain"]
STACKS = {
    "asyncio+h11": ["--loop", "asyncio", "--http", "h11"],
    "uvloop+httptools": ["--loop", "uvloop", "--http", "httptools"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 20.0, poll: float = 0.1) -> None:
    """``poll`` also bounds each attempt (ten times it): a server under valgrind answers slowly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=poll * 10).read()
            return
        except OSError:
            time.sleep(poll)
    raise TimeoutError(url)


def uvicorn_command(port: int, stack: list[str]) -> list[str]:
    """One worker serving bench/http_app.py (``BENCH_VARIANT`` picks the variant) on ``port``."""
    app = "bench.http_app:app"
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *stack,
    ]


def start_collector(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    built = subprocess.run(["bash", str(REPO / "collector/build.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        print("collector not built: exporting variants keep spans in process", file=sys.stderr)
        return None, None
    grpc, http, prom, tele, health = (free_port() for _ in range(5))
    env = {
        **os.environ,
        "OTELKIT_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
        "OTELKIT_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http}",
        "OTELKIT_PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{prom}",
        "OTELKIT_COLLECTOR_TELEMETRY_PORT": str(tele),
        "OTELKIT_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
    }
    log = (tmp / "collector.log").open("wb")
    process = subprocess.Popen(
        [built.stdout.strip(), f"--config={REPO / 'collector/config.yaml'}"], env=env, stdout=log, stderr=log
    )
    wait_ready(f"http://127.0.0.1:{health}/")
    return process, f"http://127.0.0.1:{grpc}"


@dataclass
class Measurement:
    rps: float
    rss: int
    p99_ms: float
    cpu_us: float
    """Server CPU time (user + system, every thread) per request: steadier than req/s on a shared machine."""
    collector_cpu_us: float
    """The collector's CPU time per request: it shares the machine's cores with the server and wrk."""


def measure(
    variant: str,
    stack: list[str],
    otlp: str | None,
    seconds: int,
    connections: int,
    collector: psutil.Process | None = None,
    extra_env: dict[str, str] | None = None,
) -> Measurement:
    """One variant in its own uvicorn process under wrk: throughput, RSS and p99 latency."""
    port = free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "PYTHONPATH": str(REPO), **(extra_env or {})}
    if otlp:
        env["BENCH_OTLP_ENDPOINT"] = otlp
    server = subprocess.Popen(uvicorn_command(port, stack), env=env, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{port}/items/1"
        wait_ready(url)
        subprocess.run(["wrk", "-t1", f"-c{connections}", "-d2s", url], capture_output=True, check=True)  # warm-up
        process = psutil.Process(server.pid)
        cpu_before = sum(process.cpu_times()[:2])
        collector_before = sum(collector.cpu_times()[:2]) if collector else 0.0
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        collector_cpu = sum(collector.cpu_times()[:2]) - collector_before if collector else 0.0
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        requests = re.search(r"(\d+) requests in", out)
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if match is None or requests is None or p99 is None or non2xx:
            raise RuntimeError(f"{variant}: unexpected wrk output:\n{out}")
        rss = process.memory_info().rss
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
        count = int(requests.group(1))
        return Measurement(float(match.group(1)), rss, p99_ms, cpu / count * 1e6, collector_cpu / count * 1e6)
    finally:
        server.terminate()
        server.wait(10)


def paired_ratio(runs: dict[str, list[Measurement]], variant: str, baseline: str, field: str) -> float:
    """Median over rounds of variant / baseline within each round: drift between rounds (a shared
    machine's load comes and goes) cancels out of each pair, where a ratio of medians keeps it."""
    return statistics.median(
        getattr(mine, field) / getattr(base, field) for mine, base in zip(runs[variant], runs[baseline], strict=True)
    )


def signed_rank_p(differences: list[float]) -> float:
    """One-sided exact p-value of Wilcoxon's signed-rank test that the differences lean positive.

    Why a test at all: this machine moves whole runs by 5 %, as much as the gaps compared, so
    "ahead in 9 rounds of 15" needs a number saying how likely that is by chance. Ties (zero
    differences) are left out; equal magnitudes share their mean rank.
    """
    nonzero = sorted((abs(d), d) for d in differences if d != 0)
    doubled_ranks: list[int] = []  # twice each rank: mean ranks of ties are half-integers
    index = 0
    while index < len(nonzero):
        end = index
        while end + 1 < len(nonzero) and nonzero[end + 1][0] == nonzero[index][0]:
            end += 1
        doubled_ranks += [index + end + 2] * (end - index + 1)
        index = end + 1
    negative = sum(rank for rank, (_, d) in zip(doubled_ranks, nonzero, strict=True) if d < 0)
    ways = [1] + [0] * sum(doubled_ranks)  # ways[s]: sign patterns whose negative ranks sum to s
    for rank in doubled_ranks:
        for total in range(len(ways) - 1, rank - 1, -1):
            ways[total] += ways[total - rank]
    return sum(ways[: negative + 1]) / 2 ** len(doubled_ranks)


def head_to_head(runs: dict[str, list[Measurement]], first: str, second: str) -> str:
    """``first`` against ``second`` round by round: rounds ahead, median ratios, signed-rank p-values."""
    pairs = list(zip(runs[first], runs[second], strict=True))
    ahead = sum(a.rps > b.rps for a, b in pairs)
    ratio = statistics.median(a.rps / b.rps for a, b in pairs)
    cpu_ratio = statistics.median(b.cpu_us / a.cpu_us for a, b in pairs)
    p_rps = signed_rank_p([a.rps - b.rps for a, b in pairs])
    p_cpu = signed_rank_p([b.cpu_us - a.cpu_us for a, b in pairs])
    return (
        f"  {first} against {second}: ahead in {ahead} of {len(pairs)} rounds; req/s x{ratio:.3f}"
        f" (one-sided signed-rank p={p_rps:.3f}); CPU/req {second}/{first} x{cpu_ratio:.3f} (p={p_cpu:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--stacks", default=",".join(STACKS), help=f"some of {', '.join(STACKS)}")
    parser.add_argument("--versus", help="A,B: compare two of the variants round by round")
    parser.add_argument("--no-export", action="store_true", help="no collector: spans and metrics stay in process")
    args = parser.parse_args()
    unknown = set(args.stacks.split(",")) - STACKS.keys()
    if unknown:
        raise SystemExit(f"--stacks: unknown {', '.join(sorted(unknown))}; known: {', '.join(STACKS)}")
    versus = args.versus.split(",") if args.versus else []
    if versus and (len(versus) != 2 or not set(versus) <= set(args.variants.split(","))):
        raise SystemExit(f"--versus {args.versus!r}: two of the variants measured, A,B")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        collector, otlp = (None, None) if args.no_export else start_collector(Path(tmp))
        collector_process = psutil.Process(collector.pid) if collector else None
        try:
            for stack_name in args.stacks.split(","):
                stack = STACKS[stack_name]
                runs: dict[str, list[Measurement]] = {v: [] for v in variants}
                for _ in range(args.rounds):
                    for variant in variants:
                        runs[variant].append(
                            measure(variant, stack, otlp, args.seconds, args.connections, collector_process)
                        )
                rps = {v: statistics.median(m.rps for m in runs[v]) for v in variants}
                cpu = {v: statistics.median(m.cpu_us for m in runs[v]) for v in variants}
                print(f"\n{stack_name}: median of {args.rounds} rounds, wrk -t1 -c{args.connections} -d{args.seconds}s")
                print("  x bare, bare/it: median of the rounds' own ratios (each round measures bare too)")
                header = ("variant", "req/s", "x bare", "CPU us/req", "bare/it", "coll us", "RSS MiB")
                print("  {:<17} {:>8} {:>7} {:>10} {:>7} {:>7} {:>8}   each round: req/s (x bare)".format(*header))
                for variant in variants:
                    ratio = f"{paired_ratio(runs, variant, 'bare', 'rps'):.2f}" if "bare" in runs else "-"
                    cpu_ratio = f"{1 / paired_ratio(runs, variant, 'bare', 'cpu_us'):.2f}" if "bare" in runs else "-"
                    memory = statistics.median(m.rss for m in runs[variant]) / 2**20
                    collector_us = statistics.median(m.collector_cpu_us for m in runs[variant])
                    # Each round's own ratio beside its req/s: the spread says how far two medians can be trusted.
                    rounds = " ".join(
                        f"{m.rps:.0f}" + (f" ({m.rps / base.rps:.2f})" if "bare" in runs else "")
                        for m, base in zip(runs[variant], runs.get("bare", runs[variant]), strict=True)
                    )
                    print(
                        f"  {variant:<17} {rps[variant]:8.0f} {ratio:>7} {cpu[variant]:10.1f} {cpu_ratio:>7}"
                        f" {collector_us:7.1f} {memory:8.1f}   {rounds}"
                    )
                if versus:
                    print(head_to_head(runs, *versus))
        finally:
            if collector is not None:
                collector.terminate()
                collector.wait(10)


if __name__ == "__main__":
    main()
