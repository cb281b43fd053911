"""One MCP server's session in this process, kept by a task on the process's tools event loop.

The task connects (starting the command for stdio), initialises, lists the tools, then watches the session: it
re-lists on the server's `notifications/tools/list_changed` and on a refresh, pings the server while idle, and when
the session ends (a stdio server's process exits, an HTTP server stops answering) connects again: at once after a
session that had lasted, then after waits that double up to `BACKOFF_SECONDS[-1]`. Its tools stay listed meanwhile;
while it is down they are unavailable with the reason.

A call waits for a (re)starting server up to `CONNECT_TIMEOUT_SECONDS`. Cancelling a call (the step's timeout, a
cancelled run) sends the server `notifications/cancelled` for its request, so that the server stops the work too.
"""

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.message import SessionMessage
from mcp.shared.session import RequestResponder

from runwire.tools.base import ToolError
from runwire.tools.mcp.config import HttpServer, ServerConfig, StdioServer
from runwire.tools.mcp.tool import McpTool, Progress
from runwire.tools.tls import client_tls_context

log = logging.getLogger("runwire.mcp")

CONNECT_TIMEOUT_SECONDS = 10.0
PING_INTERVAL_SECONDS = 10.0
PING_TIMEOUT_SECONDS = 5.0
# A session that lasted this long was healthy: the next restart is immediate again.
STABLE_SECONDS = 30.0
BACKOFF_SECONDS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
CANCEL_NOTICE_SECONDS = 2.0
# An MCP tool name becomes `<server>.<name>`: it must be a name the contract's ids can hold.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_TOOL_ID = 64
CLIENT_INFO = types.Implementation(name="runwire", version="0.1.0")


class State(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DOWN = "down"


class _Ended(Exception):
    """The session ended without an error of its own (the server closed it)."""


class ServerConnection:
    def __init__(self, config: ServerConfig, caller: Callable[["ServerConnection"], Any]) -> None:
        self.config = config
        self.name = config.name
        self.state = State.STARTING
        self.reason = f"The MCP server '{config.name}' is starting."
        # None until the server has listed its tools once; replaced whole, never changed in place.
        self.tools: dict[str, McpTool] | None = None
        self.first_attempt_done = asyncio.Event()
        self._caller = caller
        self._session: ClientSession | None = None
        # Replaced (after being set) whenever `state` changes, so that callers can wait for the next change.
        self._state_changed = asyncio.Event()
        # When a server that is down is tried again (loop time), while it is.
        self._retry_at: float | None = None
        # Set whenever no listing is pending (after a listing, or an attempt that failed).
        self._listed = asyncio.Event()
        self._wake = asyncio.Event()
        self._refresh_wanted = False
        self._closed = False
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._lost: set[asyncio.Task[Any]] = set()

    # Read from any thread

    @property
    def tools_known(self) -> bool:
        return self.tools is not None

    def unavailable_reason(self) -> str | None:
        if self.state is State.READY or (self.state is State.STARTING and self.tools is not None):
            return None  # a restarting server: a call waits for it
        return self.reason

    @property
    def status_reason(self) -> str | None:
        """Why the server is not ready; None when it is."""
        return None if self.state is State.READY else self.reason

    def tool_named(self, name: str) -> McpTool | None:
        return (self.tools or {}).get(name)

    # On the tools loop

    def request_refresh(self) -> None:
        """Re-list the tools now (and, for a server that is down, try to connect now)."""
        self._refresh_wanted = True
        self._listed.clear()
        self._wake.set()

    async def wait_listed(self) -> None:
        await self._listed.wait()

    def _set_state(self, state: State) -> None:
        self.state = state
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()

    async def wait_ready(self, timeout: float = CONNECT_TIMEOUT_SECONDS) -> ClientSession:
        """The session, once the server is ready: waited for while it (re)starts, and while a stdio server (which
        Runwire restarts) is down if it is started again within `timeout`; else ToolError("tool_unavailable")."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        restarts = isinstance(self.config, StdioServer)
        while self._session is None:
            retry_soon = restarts and self._retry_at is not None and self._retry_at < deadline
            down = self.state is State.DOWN and not retry_soon
            if down or loop.time() >= deadline:
                raise ToolError("tool_unavailable", self.reason)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._state_changed.wait()
        return self._session

    async def call(
        self, tool_name: str, arguments: dict[str, Any], progress: Progress | None = None
    ) -> types.CallToolResult:
        session = await self.wait_ready()
        task = asyncio.current_task()
        assert task is not None
        lost = f"The MCP server '{self.name}' closed its connection during the call; Runwire restarts it."
        # The id `call_tool` is about to give its request (taken before its first await), for a cancellation.
        request_id = session._request_id
        self._in_flight.add(task)
        try:
            return await session.call_tool(tool_name, arguments, progress_callback=progress)
        except asyncio.CancelledError:
            if task in self._lost and task.cancelling() == 1:
                task.uncancel()  # cancelled by the session's end alone, not by the caller
                raise ToolError("tool_unavailable", lost) from None
            if task not in self._lost:
                await self._send_cancelled(session, request_id)
            raise
        except McpError as error:
            if error.error.code == types.CONNECTION_CLOSED:
                raise ToolError("tool_unavailable", lost) from None
            raise ToolError("tool_error", f"The MCP server '{self.name}' answered: {error.error.message}") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            raise ToolError("tool_unavailable", lost) from None
        except Exception as error:  # a result that breaks the protocol or the tool's output schema
            message = f"The MCP server '{self.name}' sent a result Runwire cannot use: {error}"
            raise ToolError("tool_error", message) from None
        finally:
            self._in_flight.discard(task)
            self._lost.discard(task)

    def _end_session(self) -> None:
        """The session is over: new calls wait for the next one, and calls in flight fail (the SDK would leave them
        waiting for an answer that cannot come when its transport fails)."""
        self._session = None
        for task in self._in_flight:
            self._lost.add(task)
            task.cancel()
        self._in_flight.clear()

    async def _send_cancelled(self, session: ClientSession, request_id: int) -> None:
        reason = "The step was cancelled or timed out."
        notification = types.ClientNotification(
            types.CancelledNotification(params=types.CancelledNotificationParams(requestId=request_id, reason=reason))
        )
        try:
            await asyncio.wait_for(session.send_notification(notification), CANCEL_NOTICE_SECONDS)
        except Exception as error:  # the session is gone: so is the call
            log.info("could not send a cancellation", extra={"server": self.name, "error": type(error).__name__})

    async def keep(self) -> None:
        """Connect, watch, and connect again, until cancelled."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            began = loop.time()
            try:
                await self._session_lifetime()
                reason = "closed its connection"
            except Exception as error:
                reason = _describe(error)
            was_ready = self.state is State.READY
            if was_ready and loop.time() - began >= STABLE_SECONDS:
                failures = 0
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            failures += 1
            verb = "stopped" if was_ready else "could not be started" if self.config.transport == "stdio" else "is down"
            self.reason = f"The MCP server '{self.name}' {verb}: {reason}."
            self._retry_at = loop.time() + delay if delay else None
            self._set_state(State.STARTING if delay == 0 else State.DOWN)
            log.warning(
                "MCP server unavailable", extra={"server": self.name, "reason": reason, "retry_in_seconds": delay}
            )
            self.first_attempt_done.set()
            self._listed.set()
            if delay:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._retry_at = None
                self._set_state(State.STARTING)

    async def _session_lifetime(self) -> None:
        self._closed = False
        self._wake.clear()
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport())
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)
            forward_send, forward_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            tasks.start_soon(self._forward, read, forward_send)
            session = await stack.enter_async_context(
                ClientSession(forward_receive, write, message_handler=self._on_message, client_info=CLIENT_INFO)
            )
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await session.initialize()
                self._publish(await self._list_tools(session))
            self._session = session
            self._set_state(State.READY)
            self.first_attempt_done.set()
            log.info("MCP server ready", extra={"server": self.name, "tools": len(self.tools or {})})
            try:
                await self._watch(session)
            finally:
                self._end_session()

    async def _watch(self, session: ClientSession) -> None:
        while True:
            try:
                async with asyncio.timeout(PING_INTERVAL_SECONDS):
                    await self._wake.wait()
            except TimeoutError:
                async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                    await session.send_ping()
                continue
            self._wake.clear()
            if self._closed:
                raise _Ended("its connection closed (a stdio server's process exited)")
            if self._refresh_wanted:
                self._refresh_wanted = False
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    self._publish(await self._list_tools(session))
                log.info("MCP tools listed again", extra={"server": self.name, "tools": len(self.tools or {})})

    async def _forward(self, read: MemoryObjectReceiveStream[SessionMessage | Exception], send: Any) -> None:
        """Pass the server's messages on to the session, and notice when they end."""
        async with send:
            async for message in read:
                await send.send(message)
        self._closed = True
        self._wake.set()

    async def _on_message(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult] | types.ServerNotification | Exception,
    ) -> None:
        notification = message.root if isinstance(message, types.ServerNotification) else None
        if isinstance(notification, types.ToolListChangedNotification):
            self.request_refresh()

    async def _list_tools(self, session: ClientSession) -> dict[str, McpTool]:
        tools: dict[str, McpTool] = {}
        cursor: str | None = None
        while True:
            page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            for listed in page.tools:
                if not TOOL_NAME.match(listed.name) or len(self.name) + 1 + len(listed.name) > MAX_TOOL_ID:
                    extra = {"server": self.name, "tool": listed.name[:200]}
                    log.warning("MCP tool left out: its name cannot be a tool id", extra=extra)
                    continue
                tools[listed.name] = McpTool(self, listed, self._caller(self))
            cursor = page.nextCursor
            if not cursor:
                return tools

    def _publish(self, tools: dict[str, McpTool]) -> None:
        self.tools = tools
        self._listed.set()

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        config = self.config
        if isinstance(config, StdioServer):
            parameters = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.environment), cwd=config.cwd
            )
            async with stdio_client(parameters, errlog=sys.stderr) as (read, write):
                yield read, write
            return
        assert isinstance(config, HttpServer)
        client = httpx.AsyncClient(
            headers=dict(config.headers),
            timeout=httpx.Timeout(30.0, read=None),
            follow_redirects=True,
            verify=client_tls_context(),
        )
        async with client, streamable_http_client(config.url, http_client=client) as (read, write, _):
            yield read, write


def _describe(error: BaseException) -> str:
    """The innermost error of a (grouped) failure, in a few words."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, _Ended):
        return str(error)
    if isinstance(error, TimeoutError):
        return "it did not answer in time"
    if isinstance(error, McpError):
        return error.error.message
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
