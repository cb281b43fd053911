"""The MCP servers of a Runwire process: one session per configured server, kept on an event loop of their own in a
thread of their own, so that every caller (the executor's loop, request threads, the CLI) reaches them the same way
and no caller's loop holds them. The manager is a tool source for the registry."""

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runwire.tools.base import Tool, ToolError
from runwire.tools.mcp.config import ToolsConfig

# The mcp SDK (about a tenth of a process's start-up) is imported by a process with servers only: see `_connections`.
if TYPE_CHECKING:
    from mcp import types

    from runwire.tools.mcp.connection import ServerConnection
    from runwire.tools.mcp.tool import Caller, Progress

log = logging.getLogger("runwire.mcp")

T = TypeVar("T")

STOP_SECONDS = 10.0
STAMP_POLL_SECONDS = 1.0


class McpServers:
    """Start with `start()`, install into the registry, `stop()` at the end. Without servers it starts nothing."""

    def __init__(self, config: ToolsConfig, refresh_stamp: Path | None = None) -> None:
        self.config = config
        self.refresh_stamp = refresh_stamp
        self.connections = self._connections(config) if config.servers else {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _connections(self, config: ToolsConfig) -> "dict[str, ServerConnection]":
        from runwire.tools.mcp.connection import ServerConnection

        return {server.name: ServerConnection(server, self._caller) for server in config.servers}

    def start(self) -> None:
        """Connect to every server in the background."""
        if not self.connections:
            return
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="runwire-mcp", daemon=True)
        self._thread.start()
        self._submit(self._launch()).result()

    def wait_started(self, timeout: float) -> None:
        """Wait up to `timeout` for every server's first attempt to connect (a server down or slow to start is not
        waited for longer: its tools join when it is ready)."""
        if self._loop is None:
            return
        try:
            self._submit(self._first_attempts()).result(max(timeout, 0.0))
        except concurrent.futures.TimeoutError:
            starting = [c.name for c in self.connections.values() if not c.first_attempt_done.is_set()]
            log.warning("MCP servers still starting; their tools join when ready", extra={"servers": starting})

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STOP_SECONDS)
        except (concurrent.futures.TimeoutError, RuntimeError):
            log.warning("MCP sessions did not close in time")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
        if not loop.is_running():
            loop.close()

    def refresh(self) -> None:
        """Every server lists its tools again (one that is down is tried again now); returns at once."""
        loop = self._loop
        if loop is not None:
            for connection in self.connections.values():
                loop.call_soon_threadsafe(connection.request_refresh)

    def refresh_and_wait(self, timeout: float) -> None:
        """`refresh()`, then wait up to `timeout` for the servers that answer to have listed their tools."""
        if self._loop is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self._submit(self._refreshed()).result(timeout)

    # The registry's tool source

    def listed(self) -> list[Tool[Any]]:
        return [tool for connection in self.connections.values() for tool in (connection.tools or {}).values()]

    def find(self, tool_id: str) -> Tool[Any] | None:
        server, dot, name = tool_id.partition(".")
        connection = self.connections.get(server)
        if connection is None or not dot or not name:
            return None
        from runwire.tools.mcp.tool import McpStandIn  # imported with the connection (`_connections`)

        return connection.tool_named(name) or McpStandIn(connection, name, lambda: self._wait_ready(connection))

    def status(self) -> list[tuple[str, str, str | None]]:
        """(server, state, reason) for each server."""
        return [(c.name, c.state, c.status_reason) for c in self.connections.values()]

    # Crossing from the caller's loop to the tools loop

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise ToolError("tool_unavailable", "This process's MCP sessions are closed.")
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def _caller(self, connection: "ServerConnection") -> "Caller":
        async def call(tool_name: str, arguments: dict[str, Any], progress: "Progress") -> "types.CallToolResult":
            # Cancelling this await cancels the call's task on the tools loop, which tells the server.
            return await asyncio.wrap_future(self._submit(connection.call(tool_name, arguments, progress)))

        return call

    async def _wait_ready(self, connection: "ServerConnection") -> None:
        await asyncio.wrap_future(self._submit(connection.wait_ready()))

    # On the tools loop

    async def _launch(self) -> None:
        self._tasks = [asyncio.create_task(c.keep(), name=f"mcp:{c.name}") for c in self.connections.values()]
        if self.refresh_stamp is not None:
            self._tasks.append(asyncio.create_task(self._watch_stamp(self.refresh_stamp), name="mcp:refresh-stamp"))

    async def _first_attempts(self) -> None:
        await asyncio.gather(*(c.first_attempt_done.wait() for c in self.connections.values()))

    async def _refreshed(self) -> None:
        for connection in self.connections.values():
            connection.request_refresh()
        await asyncio.sleep(0)
        await asyncio.gather(*(c.wait_listed() for c in self.connections.values()), return_exceptions=True)

    async def _watch_stamp(self, stamp: Path) -> None:
        """`runwire tools refresh` touches the stamp file: re-list when its time changes."""
        seen = _mtime(stamp)
        while True:
            await asyncio.sleep(STAMP_POLL_SECONDS)
            current = _mtime(stamp)
            if current != seen:
                seen = current
                log.info("tools refresh requested")
                for connection in self.connections.values():
                    connection.request_refresh()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
