"""Benchmark of the run engine: runs of 5 sequential `template` steps (no waiting in any tool).

- Throughput: 200 runs across 20 chats requested at once (10 per chat, so 20 run at a time); steps/s from the
  first request to the last `completedAt`, and the server time per step that follows from it.
- Alone: runs one at a time, each in an idle chat of its own: start latency = the run's `startedAt` minus the
  moment its `POST .../workflow-runs` was sent, and per-step overhead = (completedAt - startedAt) / steps (the
  template tool itself renders in well under a millisecond).

A real `runwire serve` on a fresh temporary data dir (embedded SQLite), pinned to one core as in the list bench.
Timestamps have millisecond precision (floored). Exit status 0 whenever the harness itself worked.

    python -m bench.engine_bench [--quick]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import Api, Server, parse_timestamp
from bench.loadgen import split_cores
from bench.report import Figure, print_table
from bench.seeding import request_runs, template_steps, wait_until_ended

STEPS = 5
RUN_TIMEOUT = 300.0
GOAL_STEP_MS = 5.0
GOAL_START_MS = 100.0


@dataclass(frozen=True)
class Scale:
    chats: int
    runs_per_chat: int
    solo_runs: int


FULL = Scale(chats=20, runs_per_chat=10, solo_runs=20)
QUICK = Scale(chats=4, runs_per_chat=3, solo_runs=3)


@dataclass(frozen=True)
class Throughput:
    runs: int
    steps: int
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


@dataclass(frozen=True)
class Alone:
    start_ms: list[float]
    step_ms: list[float]


async def throughput(api: Api, workflow_id: str, scale: Scale) -> Throughput:
    chats = await api.create_chats(scale.chats, "bench engine")
    began = time.time()
    await asyncio.gather(*(request_runs(api, chat, workflow_id, scale.runs_per_chat) for chat in chats))
    ended = await wait_until_ended(api, chats, RUN_TIMEOUT)
    last = max(parse_timestamp(run["completedAt"]) for runs in ended.values() for run in runs)
    runs = scale.chats * scale.runs_per_chat
    return Throughput(runs, runs * STEPS, last - began)


async def alone(api: Api, workflow_id: str, count: int) -> Alone:
    start_ms: list[float] = []
    step_ms: list[float] = []
    for _ in range(count + 1):  # the first one warms up and is not counted
        chat = await api.create_chat("bench engine alone")
        sent = time.time()
        await api.start_run(chat, workflow_id)
        (run,) = (await wait_until_ended(api, [chat], RUN_TIMEOUT))[chat]
        started, completed = parse_timestamp(run["startedAt"]), parse_timestamp(run["completedAt"])
        start_ms.append((started - sent) * 1000)
        step_ms.append((completed - started) * 1000 / STEPS)
    return Alone(start_ms[1:], step_ms[1:])


async def bench(server: Server, scale: Scale) -> tuple[Throughput, Alone]:
    api = Api(server.url, max_connections=64)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow("bench engine", template_steps(STEPS))
        solo = await alone(api, workflow_id, scale.solo_runs)
        loaded = await throughput(api, workflow_id, scale)
        return loaded, solo
    finally:
        await api.aclose()


def _p(samples: list[float], percentile: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[percentile - 1]


def figures(loaded: Throughput, solo: Alone) -> list[Figure]:
    step_p50, start_p50 = _p(solo.step_ms, 50), _p(solo.start_ms, 50)
    return [
        Figure(
            f"steps/s, {loaded.runs} runs x {STEPS} steps at once",
            f"{loaded.steps_per_second:.0f} ({loaded.seconds:.1f} s)",
        ),
        Figure("  server time per step under that load", f"{1000 / loaded.steps_per_second:.1f} ms"),
        Figure(
            f"per-step overhead alone p50/p99 ({len(solo.step_ms)} runs)",
            f"{step_p50:.1f} / {_p(solo.step_ms, 99):.1f} ms",
            f"<= {GOAL_STEP_MS:g} ms",
            step_p50 <= GOAL_STEP_MS,
        ),
        Figure(
            "POST -> running, idle chat p50/p99",
            f"{start_p50:.1f} / {_p(solo.start_ms, 99):.1f} ms",
            f"<= {GOAL_START_MS:g} ms",
            start_p50 <= GOAL_START_MS,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 runs across 4 chats and 3 runs alone")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    server_cpus, _ = split_cores()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="runwire-bench-", ignore_cleanup_errors=True) as tmp,
        Server(Path(tmp) / "data", Path(tmp) / "server.log", cpus=server_cpus) as server,
    ):
        loaded, solo = asyncio.run(bench(server, scale))
    print_table("engine (runs of 5 sequential template steps)", figures(loaded, solo))
    print(f"server pinned to CPUs {server_cpus}; took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
