"""Benchmark of an MCP tool's per-call overhead in Runwire against calling the same FastMCP tool directly with the
SDK, over stdio and over streamable HTTP, in one run:

- direct: the SDK's `ClientSession.call_tool` in a loop, the floor;
- Runwire's MCP layer: the same call through Runwire's tool (schema check, the hop to the tools loop and back, the
  result mapped), from another event loop as the executor calls it;
- a step: `runwire serve` running workflows of N sequential MCP steps, per step from the run's startedAt and
  completedAt, beside workflows of N trivial built-in steps (`delay` 0 s): the difference is what an MCP call adds to
  a step.

    python -m bench.mcp_bench [--quick]
"""

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from bench.common import Api, Server, free_port
from bench.report import Figure, print_table
from bench.seeding import chained_steps, ms_per_step, run_alone
from runwire.config import Settings
from runwire.tools.mcp.config import HttpServer, ServerConfig, StdioServer, ToolsConfig
from runwire.tools.mcp.manager import McpServers

SERVER_SCRIPT = Path(__file__).with_name("mcp_server.py")
RUN_TIMEOUT = 300.0
ARGUMENTS = {"a": 1, "b": 2}


@contextlib.contextmanager
def http_server(log: Path) -> Iterator[str]:
    """The benchmark's server over streamable HTTP on 127.0.0.1; its URL."""
    port = free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--http", str(port)], stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the MCP server did not start:\n{log.read_text()}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait(10)


@contextlib.asynccontextmanager
async def sdk_session(url: str | None) -> AsyncIterator[ClientSession]:
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            parameters = StdioServerParameters(command=sys.executable, args=[str(SERVER_SCRIPT)])
            read, write = await stack.enter_async_context(stdio_client(parameters))
        else:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            read, write, _ = await stack.enter_async_context(streamable_http_client(url, http_client=client))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


async def direct_ms(url: str | None, calls: int) -> list[float]:
    async with sdk_session(url) as session:
        samples = []
        for _ in range(calls + calls // 10):
            began = time.perf_counter()
            await session.call_tool("add", ARGUMENTS)
            samples.append((time.perf_counter() - began) * 1000)
        return samples[calls // 10 :]  # the first tenth warms up


class _Context:
    settings = Settings()


def layer_ms(server: ServerConfig, calls: int) -> list[float]:
    servers = McpServers(ToolsConfig(None, (server,)))
    servers.start()
    servers.wait_started(30)
    try:
        tool = servers.find("bench.add")
        assert tool is not None and tool.unavailable_reason(_Context.settings) is None, servers.status()

        async def loop() -> list[float]:
            samples = []
            for _ in range(calls + calls // 10):
                began = time.perf_counter()
                await tool.run(tool.parse_inputs(dict(ARGUMENTS)), _Context())  # type: ignore[arg-type]
                samples.append((time.perf_counter() - began) * 1000)
            return samples[calls // 10 :]

        return asyncio.run(loop())
    finally:
        servers.stop()


async def per_step_ms(server: Server, tool_id: str, inputs: dict[str, Any], steps: int, runs: int) -> list[float]:
    api = Api(server.url, max_connections=4)
    try:
        await api.sign_up()
        workflow_id = await api.create_workflow(f"bench {tool_id}", chained_steps(steps, tool_id, inputs))
        samples = []
        for _ in range(runs + 1):  # the first one warms up and is not counted
            samples.append(ms_per_step(await run_alone(api, workflow_id, "bench mcp", RUN_TIMEOUT), steps))
        return samples[1:]
    finally:
        await api.aclose()


def write_config(path: Path, http_url: str) -> Path:
    path.write_text(
        f"[mcp.bench]\ncommand = {sys.executable!r}\nargs = [{str(SERVER_SCRIPT)!r}]\n\n"
        f"[mcp.benchhttp]\nurl = {http_url!r}\n".replace("'", '"')
    )
    return path


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and runs")
    args = parser.parse_args(argv)
    calls, steps, runs = (100, 10, 2) if args.quick else (2000, 50, 5)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="runwire-bench-", ignore_cleanup_errors=True) as directory:
        tmp = Path(directory)
        with http_server(tmp / "mcp-http.log") as url:
            transports: list[tuple[str, str | None, ServerConfig, str]] = [
                (
                    "stdio",
                    None,
                    StdioServer("bench", sys.executable, (str(SERVER_SCRIPT),), environment=os.environ),
                    "bench.add",
                ),
                ("HTTP", url, HttpServer("bench", url), "benchhttp.add"),
            ]
            direct = {name: asyncio.run(direct_ms(address, calls)) for name, address, _, _ in transports}
            layer = {name: layer_ms(config, calls) for name, _, config, _ in transports}
            env = {"RUNWIRE_TOOLS_CONFIG": str(write_config(tmp / "tools.toml", url))}
            with Server(tmp / "data", tmp / "server.log", env=env) as server:
                trivial = asyncio.run(per_step_ms(server, "delay", {"seconds": 0}, steps, runs))
                stepped = {
                    name: asyncio.run(per_step_ms(server, tool_id, ARGUMENTS, steps, runs))
                    for name, _, _, tool_id in transports
                }
    figures.append(
        Figure(f"a trivial built-in step (delay 0 s), per step p50 ({runs} runs x {steps})", f"{p50(trivial):.2f} ms")
    )
    for name, _, _, _ in transports:
        figures += [
            Figure(f"{name}: direct SDK call_tool p50 ({calls} calls)", f"{p50(direct[name]):.3f} ms"),
            Figure(f"{name}: through Runwire's MCP tool p50", f"{p50(layer[name]):.3f} ms"),
            Figure(f"{name}: Runwire's MCP layer adds", f"{p50(layer[name]) - p50(direct[name]):.3f} ms"),
            Figure(f"{name}: an MCP step, per step p50 ({runs} runs x {steps})", f"{p50(stepped[name]):.2f} ms"),
            Figure(
                f"{name}: an MCP step over a direct call",
                f"{p50(stepped[name]) - p50(direct[name]):.2f} ms",
            ),
            Figure(
                f"{name}: an MCP step over a trivial step",
                f"{p50(stepped[name]) - p50(trivial):.2f} ms",
            ),
        ]
    print_table("an MCP tool call: direct with the SDK, through Runwire's MCP layer, and as a workflow step", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
