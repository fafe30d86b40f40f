"""Instructions per request of each HTTP benchmark variant, counted by valgrind: figures that
do not move with the load of a shared machine.

    python bench/bench_instructions.py [--seconds 20] [--variants bare,otelkit-full,...]

Each variant of bench/http_app.py runs in uvicorn (uvloop + httptools, one worker) under
``valgrind --tool=callgrind``; after a warm-up under wrk the counters are zeroed, wrk loads the
server again, and the instructions executed meanwhile (every thread: serving, export, gRPC) are
divided by the requests wrk completed. Exporting variants send to the otelkit collector when it
is built, as in bench_http.py. An instruction is not a nanosecond (system calls and cache misses
cost time without instructions), but the ratios to bare track bench_http.py's CPU per request,
and a change that saves instructions shows here the same on every run. Needs valgrind
(``apt-get install valgrind``); about a minute per variant.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_http import STACKS, VARIANTS, free_port, start_collector, uvicorn_command, wait_ready  # noqa: E402


def wrk(url: str, seconds: int) -> int:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return int(match.group(1))


def instructions_per_request(variant: str, otlp: str | None, seconds: int, workdir: Path) -> tuple[float, int]:
    port = free_port()
    profile = workdir / f"callgrind.{variant}"
    env = {
        **os.environ,
        "BENCH_VARIANT": variant,
        "PYTHONPATH": str(REPO),
        # otelkit's periodic metric export, left at its default, would add work per second of
        # valgrind's slow clock rather than per request.
        "OTELKIT_OTLP__EXPORT_INTERVAL_SECONDS": "3600",
    }
    if otlp:
        env["BENCH_OTLP_ENDPOINT"] = otlp
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={profile}.%p",
        *uvicorn_command(port, STACKS["uvloop+httptools"]),
    ]
    server = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/items/1"
        wait_ready(url, timeout=180, poll=1)  # Python under valgrind starts about fifty times slower
        wrk(url, 10)  # warm-up: imports, caches, the first exports
        subprocess.run(["callgrind_control", "--zero", str(server.pid)], capture_output=True, check=True)
        requests = wrk(url, seconds)
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], capture_output=True, check=True)
        total = 0
        for dump in workdir.glob(f"callgrind.{variant}.{server.pid}.*"):  # the dump, not the startup part
            text = dump.read_text(errors="replace")
            if "Trigger: Client Request" in text or "Trigger: dump" in text:
                match = re.search(r"^summary: (\d+)", text, re.MULTILINE)
                total += int(match.group(1)) if match else 0
        if total == 0:
            raise RuntimeError(f"{variant}: callgrind wrote no dump")
        return total / requests, requests
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-export", action="store_true", help="no collector: spans and metrics stay in process")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install valgrind wrk")
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        collector, otlp = (None, None) if args.no_export else start_collector(workdir)
        try:
            counted = {v: instructions_per_request(v, otlp, args.seconds, workdir) for v in variants}
        finally:
            if collector is not None:
                collector.terminate()
                collector.wait(10)
    print(f"\nuvloop+httptools under callgrind, wrk -t1 -c32 -d{args.seconds}s after a warm-up")
    print("  {:<17} {:>14} {:>9} {:>9}".format("variant", "instr/request", "bare/it", "requests"))
    for variant, (per_request, requests) in counted.items():
        ratio = f"{counted['bare'][0] / per_request:.2f}" if "bare" in counted else "-"
        print(f"  {variant:<17} {per_request:14,.0f} {ratio:>9} {requests:9d}")


if __name__ == "__main__":
    main()
