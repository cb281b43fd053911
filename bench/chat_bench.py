"""Benchmark of chats that talk: a model's streamed answer reaching a chat-stream client (`GET /api/chats/:id/stream`).

First-chunk latency: chats whose reply workflow is one `llm` step on the fake Chat Completions server of the tests
(`tests/fake_model.py`, in this process, on 127.0.0.1); one chat-stream connection per chat, as one open chat page
holds. Messages are sent one after another per chat, the chats at once. For each run, latency = the arrival at the
chat-stream client of the run's first `step_output_delta` (`time.time()`) minus the moment the fake model sent its
first content chunk (`time.time()` just before the write).

Added cost per streamed chunk: the server's CPU time (utime + stime from /proc) over a run whose model streams
`chunks` chunks as fast as it can, less that over a run streaming one, divided by the difference (the chat stream
connected throughout, so the cost includes publishing and pushing the coalesced deltas).

Idle chat stream memory: the server's VmRSS with no stream open, then with one chat stream open on each of many
idle chats (each started live and settled).

The server is a real `runwire serve` subprocess on a fresh temporary SQLite data dir. Targets are information, not a
test: the exit status is 0 whenever the harness itself worked.

    python -m bench.chat_bench [--quick]
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.fake_model import FakeModel, Text

from bench.common import Api, Server, SseEvent, cpu_seconds, raise_open_file_limit

READ_TIMEOUT = 60.0
SETTLE_SECONDS = 3.0
TARGET_P50_MS = 50.0
ANSWER_CHUNKS = 8
CHUNK_DELAY = 0.02


@dataclass(frozen=True)
class Scale:
    chats: int
    messages_per_chat: int
    cost_chunks: int
    idle_streams: int


FULL = Scale(chats=8, messages_per_chat=12, cost_chunks=4000, idle_streams=1000)
QUICK = Scale(chats=4, messages_per_chat=5, cost_chunks=1000, idle_streams=100)


def llm_workflow() -> list[dict[str, Any]]:
    return [{"id": "answer", "toolId": "llm", "inputs": {"prompt": "{{ input.message }}"}}]


async def create_reply_chat(api: Api, workflow_id: str, title: str) -> str:
    response = await api.client.post("/api/chats", json={"title": title, "workflowId": workflow_id})
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/chats: {response.status_code} {response.text[:300]}")
    return str(response.json()["data"]["id"])


async def send(api: Api, chat_id: str, content: str) -> str:
    response = await api.client.post(f"/api/chats/{chat_id}/messages", json={"content": content})
    if response.status_code != 201:
        raise RuntimeError(f"POST messages: {response.status_code} {response.text[:300]}")
    return str(response.json()["data"]["run"]["id"])


async def watch_chat(api: Api, chat_id: str, replies: int, connected: asyncio.Event) -> list[SseEvent]:
    """The chat stream's events until `replies` assistant messages have come."""
    events: list[SseEvent] = []
    seen = 0
    path = f"/api/chats/{chat_id}/stream"
    async with api.client.stream("GET", path, timeout=httpx.Timeout(30.0, read=READ_TIMEOUT)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"chat stream: {response.status_code}")
        connected.set()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                if not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                continue
            if "event" in fields:
                event = SseEvent(fields.get("id", ""), fields["event"], json.loads(fields["data"]), time.time())
                events.append(event)
                if event.type == "message_created" and event.data["message"]["role"] == "assistant":
                    seen += 1
                    if seen >= replies:
                        return events
            fields = {}
    raise RuntimeError("the chat stream closed early")


async def converse(api: Api, chat_id: str, index: int, count: int) -> list[SseEvent]:
    connected = asyncio.Event()
    watcher = asyncio.create_task(watch_chat(api, chat_id, count, connected))
    await asyncio.wait_for(connected.wait(), 30)
    for number in range(count):
        await send(api, chat_id, f"m-{index}-{number}")
    return await asyncio.wait_for(watcher, 300)


async def first_chunk_latency(api: Api, model: FakeModel, scale: Scale) -> list[float]:
    workflow_id = await api.create_workflow("bench talk", llm_workflow())
    chats = [await create_reply_chat(api, workflow_id, f"bench {i}") for i in range(scale.chats)]
    for _ in range(scale.chats * scale.messages_per_chat):
        model.script(Text([f"w{i} " for i in range(ANSWER_CHUNKS)], delay=CHUNK_DELAY))
    per_chat = await asyncio.gather(*(converse(api, chat, i, scale.messages_per_chat) for i, chat in enumerate(chats)))
    first_sent = {}
    for received in list(model.received):
        users = [m["content"] for m in received.body["messages"] if m["role"] == "user"]
        first_sent[users[-1]] = received.chunk_times[0]
    samples = []
    for events in per_chat:
        content_of_run = {
            e.data["message"]["runId"]: e.data["message"]["content"]
            for e in events
            if e.type == "message_created" and e.data["message"]["role"] == "user"
        }
        first_arrival: dict[str, float] = {}
        for event in events:
            if event.type == "step_output_delta":
                first_arrival.setdefault(event.data["runId"], event.arrived)
        for run_id, arrived in first_arrival.items():
            samples.append((arrived - first_sent[content_of_run[run_id]]) * 1000)
    if len(samples) != scale.chats * scale.messages_per_chat:
        raise RuntimeError(f"{len(samples)} first chunks seen of {scale.chats * scale.messages_per_chat}")
    return samples


async def timed_answer(api: Api, server: Server, chat_id: str, content: str) -> tuple[float, list[SseEvent]]:
    connected = asyncio.Event()
    watcher = asyncio.create_task(watch_chat(api, chat_id, 1, connected))
    await asyncio.wait_for(connected.wait(), 30)
    await asyncio.sleep(1.0)
    before = cpu_seconds(server.pid)
    await send(api, chat_id, content)
    events = await asyncio.wait_for(watcher, 300)
    return cpu_seconds(server.pid) - before, events


async def chunk_cost(api: Api, server: Server, model: FakeModel, scale: Scale) -> tuple[float, int, float, float]:
    """CPU µs per chunk, delta events of the long answer, CPU s of the short and of the long run."""
    workflow_id = await api.create_workflow("bench cost", llm_workflow())
    chat_id = await create_reply_chat(api, workflow_id, "bench cost")
    shorts, longs = [], []
    events = 0
    for _ in range(3):
        model.script(Text(["x"]))
        short, _ = await timed_answer(api, server, chat_id, "short")
        model.script(Text(["x "] * scale.cost_chunks))
        long, long_events = await timed_answer(api, server, chat_id, "long")
        shorts.append(short)
        longs.append(long)
        events = sum(e.type == "step_output_delta" for e in long_events)
    short, long = statistics.median(shorts), statistics.median(longs)
    return (long - short) / (scale.cost_chunks - 1) * 1e6, events, short, long


async def idle_memory(api: Api, server: Server, scale: Scale) -> tuple[int, int]:
    chats = [await api.create_chat(f"idle {i}") for i in range(scale.idle_streams)]
    await asyncio.sleep(SETTLE_SECONDS)
    before = server.rss_kb()
    connected = [asyncio.Event() for _ in chats]

    async def hold(chat_id: str, event: asyncio.Event) -> None:
        path = f"/api/chats/{chat_id}/stream"
        async with api.client.stream("GET", path, timeout=httpx.Timeout(60.0, read=None)) as response:
            if response.status_code != 200:
                raise RuntimeError(f"chat stream: {response.status_code}")
            event.set()
            async for _ in response.aiter_lines():
                pass

    tasks = [asyncio.create_task(hold(chat, event)) for chat, event in zip(chats, connected, strict=True)]
    try:
        deadline = time.monotonic() + 120
        while not all(event.is_set() for event in connected):
            for task in tasks:
                if task.done():
                    task.result()
            if time.monotonic() > deadline:
                raise RuntimeError("the idle chat streams did not all connect")
            await asyncio.sleep(0.05)
        await asyncio.sleep(SETTLE_SECONDS)
        return before, server.rss_kb()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def bench(server: Server, model: FakeModel, scale: Scale) -> dict[str, Any]:
    api = Api(server.url, max_connections=scale.idle_streams + 100)
    try:
        await api.sign_up()
        latency = await first_chunk_latency(api, model, scale)
        cost = await chunk_cost(api, server, model, scale)
        memory = await idle_memory(api, server, scale)
        return {"latency": latency, "cost": cost, "memory": memory}
    finally:
        await api.aclose()


def percentile(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def print_report(command: str, scale: Scale, results: dict[str, Any]) -> None:
    latency: list[float] = results["latency"]
    per_chunk_us, events, short, long = results["cost"]
    before, opened = results["memory"]
    p50, p99 = percentile(latency, 50), percentile(latency, 99)
    print()
    print(
        f"first chunk to chat-stream client, p50 ({len(latency)} runs): {p50:.1f} ms (target <= {TARGET_P50_MS:g} ms)"
        f" {'pass' if p50 <= TARGET_P50_MS else 'FAIL'}"
    )
    print(f"first chunk to chat-stream client, p99 ({len(latency)} runs): {p99:.1f} ms")
    print(f"  min {min(latency):.1f} ms, mean {statistics.fmean(latency):.1f} ms, max {max(latency):.1f} ms")
    print(
        f"server CPU per streamed chunk: {per_chunk_us:.0f} µs ({scale.cost_chunks} chunks at full speed became "
        f"{events} step_output_delta events; run CPU {short * 1000:.0f} ms for 1 chunk, {long * 1000:.0f} ms for "
        f"{scale.cost_chunks}; medians of 3)"
    )
    print(
        f"server RSS per idle chat stream: {(opened - before) / scale.idle_streams:.1f} KB "
        f"({before} KB with none open, {opened} KB with {scale.idle_streams})"
    )
    print(f"command: {command}")
    print(
        f"latency workload: {scale.chats} chats x {scale.messages_per_chat} messages, answers of {ANSWER_CHUNKS} "
        f"chunks {CHUNK_DELAY * 1000:g} ms apart; one chat-stream connection per chat"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts; finishes in about a minute")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    command = "python -m bench.chat_bench" + (" --quick" if args.quick else "")
    raise_open_file_limit(4 * scale.idle_streams + 1024)
    model = FakeModel(api_key="sk-bench")
    with tempfile.TemporaryDirectory(prefix="runwire-bench-", ignore_cleanup_errors=True) as tmp:
        env = {"RUNWIRE_LLM_BASE_URL": model.base_url, "RUNWIRE_LLM_API_KEY": "sk-bench", "RUNWIRE_LLM_MODEL": "fake"}
        try:
            with Server(Path(tmp) / "data", Path(tmp) / "server.log", env) as server:
                print(f"runwire serve pid {server.pid} on {server.url}, data in {tmp}", flush=True)
                results = asyncio.run(bench(server, model, scale))
        finally:
            model.close()
    print_report(command, scale, results)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
