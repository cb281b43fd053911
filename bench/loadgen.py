"""HTTP load from a separate process on its own core: `wrk` when installed, else an async httpx client.

    python -m bench.loadgen URL --connections 16 --seconds 5 [--header "Cookie: ..."] [--cpus 1]

runs the httpx fallback and prints its result as JSON; `drive()` is what the benchmarks call.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import httpx

WRK_THREADS = 1


@dataclass(frozen=True)
class Load:
    generator: str
    connections: int
    seconds: float
    requests: int
    errors: int  # socket errors, timeouts and answers that are not 2xx/3xx
    rps: float
    p50_ms: float
    p99_ms: float


def split_cores() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load generator CPUs): the first allowed core for servers, the others for load; no pinning on
    a single core."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[0]}, set(cores[1:])


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "httpx"


def drive(url: str, *, connections: int, seconds: float, headers: Sequence[str] = (), cpus: set[int] | None) -> Load:
    """Load `url` for `seconds` (whole seconds with wrk) with `connections` keep-alive connections, from a child
    process on `cpus`."""
    header_args = [arg for header in headers for arg in ("--header", header)]
    if generator_name() == "wrk":
        seconds = max(1, round(seconds))  # wrk takes whole seconds
        pin = ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus)))] if cpus else []
        command = [*pin, "wrk", f"--threads={WRK_THREADS}", f"--connections={connections}"]
        command += [f"--duration={seconds}s", "--latency", "--timeout=30s", *header_args, url]
        return parse_wrk(_run(command, seconds), connections, seconds)
    command = [sys.executable, "-m", "bench.loadgen", url, f"--connections={connections}", f"--seconds={seconds:g}"]
    command += [*header_args, *(["--cpus", ",".join(map(str, sorted(cpus)))] if cpus else [])]
    return Load(**json.loads(_run(command, seconds)))


def _run(command: list[str], seconds: float) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str, connections: int, seconds: float) -> Load:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no {pattern!r}:\n{output}")
        return match

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(non_2xx.group(1))
    return Load(
        generator="wrk",
        connections=connections,
        seconds=seconds,
        requests=int(find(r"(\d+) requests in")[1]),
        errors=errors,
        rps=float(find(r"Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")[1]),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")[1]),
    )


async def _httpx_load(url: str, connections: int, seconds: float, headers: dict[str, str]) -> Load:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30.0) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while (started := time.perf_counter()) < deadline:
                try:
                    response = await client.get(url)
                    if response.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return Load("httpx", connections, seconds, len(latencies), errors, len(latencies) / elapsed, cuts[49], cuts[98])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--cpus", help="comma list of the CPUs to run on (os.sched_setaffinity)")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    headers = dict(tuple(part.strip() for part in header.split(":", 1)) for header in args.header)
    print(json.dumps(asdict(asyncio.run(_httpx_load(args.url, args.connections, args.seconds, headers)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
