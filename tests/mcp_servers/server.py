"""The MCP server the tests start, written with the SDK's FastMCP as a user would write one:

    python tests/mcp_servers/server.py                      # stdio
    python tests/mcp_servers/server.py --http PORT          # streamable HTTP on 127.0.0.1:PORT/mcp

Its tools: structured and text results, an error, a slow tool that records whether it was cancelled, one that
crashes the server mid-call, and ones that change the tool list (with and without telling the client). Every start
appends the process id to $MCP_TEST_STARTS when set; `slow` writes `started`, then `cancelled` or `completed`, to
its `marker` file.
"""

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP

mcp = FastMCP("test-server", log_level="WARNING")


@mcp.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Adds two integers."""
    return {"sum": a + b}


@mcp.tool(structured_output=False)
def echo(text: str, times: int = 1) -> list[str]:
    """Says the text back, `times` times (text content only)."""
    return [text] * times


@mcp.tool()
def fail(message: str) -> str:
    """Fails with the message."""
    raise ValueError(message)


@mcp.tool()
async def slow(seconds: float, marker: str = "") -> dict[str, Any]:
    """Sleeps; writes `started`, then `cancelled` or `completed`, to the marker file."""
    if marker:
        Path(marker).write_text("started")
    try:
        await asyncio.sleep(seconds)
    except BaseException:
        if marker:
            Path(marker).write_text("cancelled")
        raise
    if marker:
        Path(marker).write_text("completed")
    return {"slept": seconds, "pid": os.getpid()}


@mcp.tool()
async def count(n: int, ctx: Context) -> dict[str, int]:  # type: ignore[type-arg]
    """Counts to n, reporting its progress."""
    for done in range(1, n + 1):
        await asyncio.sleep(0.15)
        await ctx.report_progress(done, n, f"counted {done} of {n}")
    return {"counted": n}


@mcp.tool()
def crash(code: int = 3) -> str:
    """Kills the server in the middle of the call."""
    os._exit(code)


@mcp.tool()
def crash_once(marker: str) -> dict[str, bool]:
    """Kills the server in the middle of the call the first time (no marker file yet), then answers."""
    if not Path(marker).exists():
        Path(marker).write_text("crashed")
        os._exit(3)
    return {"survived": True}


@mcp.tool()
def whoami() -> dict[str, Any]:
    """The server's process id and the value of $MCP_TEST_SECRET."""
    return {"pid": os.getpid(), "secret": os.environ.get("MCP_TEST_SECRET"), "runwire": _runwire_variables()}


@mcp.tool()
def big(size: int) -> str:
    """A text of `size` characters."""
    return "x" * size


@mcp.tool()
async def grow(name: str, ctx: Context) -> str:  # type: ignore[type-arg]
    """Adds a tool `name` (which answers its own name) and tells the client that the tool list changed."""
    _add(name)
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


@mcp.tool()
def grow_quietly(name: str) -> str:
    """Adds a tool `name` without telling the client."""
    _add(name)
    return f"added {name}"


def _add(name: str) -> None:
    def answer() -> dict[str, str]:
        return {"name": name}

    mcp.add_tool(answer, name=name, description=f"Answers {name}.")


def _runwire_variables() -> list[str]:
    return sorted(name for name in os.environ if name.startswith("RUNWIRE_"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    args = parser.parse_args()
    if starts := os.environ.get("MCP_TEST_STARTS"):
        with open(starts, "a") as file:
            file.write(f"{os.getpid()}\n")
    if args.http:
        mcp.settings.port = args.http
        mcp.settings.log_level = "WARNING"
        mcp.run(transport="streamable-http")
    else:
        mcp.run()


if __name__ == "__main__":
    main()
