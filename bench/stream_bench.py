"""Benchmark of the live run stream (`GET /api/chats/:chatId/workflow-runs/:runId/stream`).

Push latency: runs of sequential `delay` steps, spread over a few chats so that several execute at once; each
run's stream is opened right after the run is requested. For every `step_completed` event, latency = its arrival
at this client (`time.time()`) minus the step's `completedAt` from the run detail endpoint.

Idle stream memory: runs whose single `http_request` step waits on a local server that never answers, so they
stay running and emit nothing; the server's VmRSS is read with no stream open, then with every stream connected
(each has received its first event) and settled. Several streams share a run, as tabs watching one run do.

The server is a real `runwire serve` subprocess on a fresh temporary SQLite data dir; only 127.0.0.1 is used.
Targets are information, not a test: the exit status is 0 whenever the harness itself worked.

    python -m bench.stream_bench [--quick]
"""

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Api, HangingHttpServer, Server, SseEvent, parse_timestamp, raise_open_file_limit
from bench.seeding import chained_steps

STEP_SECONDS = 0.05
SETTLE_SECONDS = 3.0
STREAM_READ_TIMEOUT = 60.0  # the server pings every 15 s
LATENCY_PHASE_TIMEOUT = 120.0
IDLE_CONNECT_TIMEOUT = 90.0
TARGET_P50_MS = 50.0
TARGET_P99_MS = 200.0
TARGET_KB_PER_STREAM = 100.0


@dataclass(frozen=True)
class Scale:
    latency_chats: int
    runs_per_chat: int
    steps_per_run: int
    idle_runs: int
    streams_per_run: int

    @property
    def latency_steps(self) -> int:
        return self.latency_chats * self.runs_per_chat * self.steps_per_run

    @property
    def idle_streams(self) -> int:
        return self.idle_runs * self.streams_per_run


FULL = Scale(latency_chats=8, runs_per_chat=5, steps_per_run=5, idle_runs=50, streams_per_run=20)
QUICK = Scale(latency_chats=4, runs_per_chat=5, steps_per_run=5, idle_runs=10, streams_per_run=20)


@dataclass(frozen=True)
class Watched:
    chat_id: str
    run_id: str
    opened: float  # time.time() just before the stream request
    events: list[SseEvent]


@dataclass(frozen=True)
class Latency:
    samples_ms: list[float]
    replayed: int  # step_completed events that happened before their stream was requested: not measured

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[p - 1]


@dataclass(frozen=True)
class IdleMemory:
    streams: int
    rss_before_kb: int
    rss_open_kb: int
    rss_after_close_kb: int
    connect_seconds: float

    @property
    def kb_per_stream(self) -> float:
        return (self.rss_open_kb - self.rss_before_kb) / self.streams


async def watch(api: Api, chat_id: str, run_id: str) -> Watched:
    opened = time.time()
    events = [event async for event in api.stream(chat_id, run_id, STREAM_READ_TIMEOUT)]
    return Watched(chat_id, run_id, opened, events)


async def run_and_watch(api: Api, chat_id: str, workflow_id: str, runs: int) -> list[Watched]:
    """Request the chat's runs one after another (they execute FIFO), opening each one's stream right away."""
    watchers = []
    for _ in range(runs):
        run_id = await api.start_run(chat_id, workflow_id)
        watchers.append(asyncio.create_task(watch(api, chat_id, run_id)))
    return list(await asyncio.gather(*watchers))


def step_latencies(watched: Watched, detail: dict[str, Any]) -> tuple[list[float], int]:
    last_event = watched.events[-1].type if watched.events else None
    if detail["status"] != "completed" or last_event != "run_completed":
        raise RuntimeError(f"run {watched.run_id} ended {detail['status']}; its last event was {last_event}")
    completed_at = {step["id"]: parse_timestamp(step["completedAt"]) for step in detail["steps"]}
    arrived = {e.data["stepId"]: e.arrived for e in watched.events if e.type == "step_completed"}
    if arrived.keys() != completed_at.keys():
        raise RuntimeError(f"run {watched.run_id}: step_completed for {sorted(arrived)}, steps {sorted(completed_at)}")
    # completedAt is floored to the millisecond: only a step certainly done before the request counts as replayed.
    live = [step for step in arrived if completed_at[step] + 0.001 > watched.opened]
    return [(arrived[step] - completed_at[step]) * 1000 for step in live], len(arrived) - len(live)


async def measure_latency(api: Api, scale: Scale) -> Latency:
    steps = chained_steps(scale.steps_per_run, "delay", {"seconds": STEP_SECONDS})
    workflow_id = await api.create_workflow("bench latency", steps)
    chats = await api.create_chats(scale.latency_chats, "bench latency")
    per_chat = await asyncio.wait_for(
        asyncio.gather(*(run_and_watch(api, chat, workflow_id, scale.runs_per_chat) for chat in chats)),
        LATENCY_PHASE_TIMEOUT,
    )
    samples: list[float] = []
    replayed = 0
    for watched in (w for chat_runs in per_chat for w in chat_runs):
        run_samples, run_replayed = step_latencies(watched, await api.get_run(watched.chat_id, watched.run_id))
        samples += run_samples
        replayed += run_replayed
    if len(samples) < 2:
        raise RuntimeError(f"only {len(samples)} live step_completed events ({replayed} replayed)")
    return Latency(samples, replayed)


async def hold_stream(api: Api, chat_id: str, run_id: str, connected: asyncio.Event) -> None:
    async for _ in api.stream(chat_id, run_id, STREAM_READ_TIMEOUT):
        connected.set()
    raise RuntimeError(f"the stream of run {run_id} closed while the run should still be running")


def check_streams(tasks: Sequence["asyncio.Task[None]"], what: str) -> None:
    """Fail if one of the streams that should stay open has ended (closed, or failed)."""
    for task in tasks:
        if task.done():
            raise RuntimeError(f"a stream ended while waiting for {what}") from task.exception()


async def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, tasks: Sequence["asyncio.Task[None]"] = ()
) -> None:
    """Poll `condition()` until true; fail on timeout or as soon as one of `tasks` has ended."""
    deadline = time.monotonic() + timeout
    while not condition():
        check_streams(tasks, what)
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def measure_idle_memory(api: Api, server: Server, hanging: HangingHttpServer, scale: Scale) -> IdleMemory:
    step = {
        "id": "wait",
        "toolId": "http_request",
        "inputs": {"method": "GET", "url": hanging.url, "timeoutSeconds": 300},
    }
    workflow_id = await api.create_workflow("bench idle", [step])
    chats = await api.create_chats(scale.idle_runs, "bench idle")  # runs of one chat would execute one at a time
    runs = list(zip(chats, await asyncio.gather(*(api.start_run(chat, workflow_id) for chat in chats)), strict=True))
    tasks: list[asyncio.Task[None]] = []
    try:
        await wait_for(lambda: hanging.accepted >= len(runs), 60, "every idle run to reach its waiting step")
        await asyncio.sleep(SETTLE_SECONDS)
        rss_before = server.rss_kb()
        connected = [asyncio.Event() for _ in range(scale.idle_streams)]
        started = time.monotonic()
        tasks = [
            asyncio.create_task(hold_stream(api, chat, run, connected[i * scale.streams_per_run + j]))
            for i, (chat, run) in enumerate(runs)
            for j in range(scale.streams_per_run)
        ]
        await wait_for(lambda: all(c.is_set() for c in connected), IDLE_CONNECT_TIMEOUT, "every stream", tasks)
        connect_seconds = time.monotonic() - started
        await asyncio.sleep(SETTLE_SECONDS)
        rss_open = server.rss_kb()
        check_streams(tasks, "the streams to settle")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cancels = await asyncio.gather(*(api.cancel_run(chat, run) for chat, run in runs), return_exceptions=True)
    if failures := [result for result in cancels if isinstance(result, BaseException)]:
        raise RuntimeError(f"{len(failures)} idle run(s) could not be cancelled") from failures[0]
    await asyncio.sleep(SETTLE_SECONDS)
    return IdleMemory(len(tasks), rss_before, rss_open, server.rss_kb(), connect_seconds)


async def bench(server: Server, scale: Scale) -> tuple[Latency, IdleMemory]:
    api = Api(server.url, max_connections=scale.idle_streams + 100)
    hanging = HangingHttpServer()
    await hanging.start()
    try:
        await api.sign_up()
        latency = await measure_latency(api, scale)
        memory = await measure_idle_memory(api, server, hanging, scale)
        return latency, memory
    finally:
        await api.aclose()
        await hanging.close()


def print_report(command: str, scale: Scale, latency: Latency, memory: IdleMemory) -> None:
    p50, p99 = latency.percentile(50), latency.percentile(99)
    steps = len(latency.samples_ms)
    measured = [
        (f"push latency p50 ({steps} steps)", p50, "ms", TARGET_P50_MS),
        (f"push latency p99 ({steps} steps)", p99, "ms", TARGET_P99_MS),
        (f"server RSS per idle stream ({memory.streams})", memory.kb_per_stream, "KB", TARGET_KB_PER_STREAM),
    ]
    table = [("metric", "value", "target", "result")] + [
        (metric, f"{value:.1f} {unit}", f"<= {limit:g} {unit}", "pass" if value <= limit else "FAIL")
        for metric, value, unit, limit in measured
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print()
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()
    print(f"command: {command}")
    print(
        f"latency workload: {scale.latency_chats} chats x {scale.runs_per_chat} runs x {scale.steps_per_run} "
        f"sequential delay steps of {STEP_SECONDS:g} s; stream opened right after each run request; "
        f"min {min(latency.samples_ms):.1f} ms, mean {statistics.fmean(latency.samples_ms):.1f} ms, "
        f"max {max(latency.samples_ms):.1f} ms; {latency.replayed} step(s) done before their stream opened, not counted"
    )
    print("completedAt has millisecond precision (floored), so each latency reads 0-1 ms high")
    print(
        f"idle workload: {memory.streams} streams = {scale.idle_runs} running runs (one per chat, an http_request "
        f"step on a local server that never answers) x {scale.streams_per_run} streams; all connected in "
        f"{memory.connect_seconds:.1f} s"
    )
    print(
        f"server VmRSS: {memory.rss_before_kb} KB with 0 streams, {memory.rss_open_kb} KB with {memory.streams}, "
        f"{memory.rss_after_close_kb} KB {SETTLE_SECONDS:g} s after closing them"
    )


LOG_PROBLEM = re.compile(r'"level": "(warning|error|critical)"|^Traceback|^(WARNING|ERROR)', re.IGNORECASE)


def summarise(line: str) -> str:
    """A JSON log line as its level, message and the last line of its exception; any other line as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line[:300]
    causes = [part for part in record.get("exception", "").splitlines() if part and not part[0].isspace()]
    cause = next((part for part in reversed(causes) if "Error" in part or "Exception" in part), "")
    return f"{record.get('level')} {record.get('logger')}: {record.get('message')} {cause[:300]}".rstrip()


def print_log_problems(server: Server) -> None:
    problems = Counter(summarise(line) for line in server.log_text().splitlines() if LOG_PROBLEM.search(line))
    print(f"server log: {sum(problems.values())} warning/error line(s)")
    for text, count in problems.most_common(10):
        print(f"  {count} x {text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts; finishes in under a minute")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    command = "python -m bench.stream_bench" + (" --quick" if args.quick else "")
    raise_open_file_limit(4 * scale.idle_streams + 1024)  # the server subprocess inherits it
    with tempfile.TemporaryDirectory(prefix="runwire-bench-", ignore_cleanup_errors=True) as tmp:
        server = Server(Path(tmp) / "data", Path(tmp) / "server.log", {"RUNWIRE_TOOL_ALLOWED_HOSTS": "127.0.0.1"})
        try:
            with server:
                print(f"runwire serve pid {server.pid} on {server.url}, data in {tmp}", flush=True)
                latency, memory = asyncio.run(bench(server, scale))
        finally:
            print_log_problems(server)
    print_report(command, scale, latency, memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
