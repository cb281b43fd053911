"""An MCP server's tool as a Runwire tool: its inputs checked against the server's JSON Schema (at save time and
before every call, and bounded in size), the call made in the server's session, and the result mapped as the
contract says (`structuredContent` when there is one, else `{text}`; `isError` fails the step with its text)."""

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Set
from typing import Any, Protocol

import jsonschema
import orjson
from jsonschema.exceptions import SchemaError
from mcp import types
from mcp.shared.session import ProgressFnT
from pydantic import RootModel

from runwire.config import Settings
from runwire.tools.base import InputProblem, Tool, ToolContext, ToolError, input_path

MAX_REPORTED_PROBLEMS = 20


class McpArguments(RootModel[dict[str, Any]]):
    """An MCP tool's inputs: a JSON object, checked against the server's input schema."""


class Server(Protocol):
    """What a tool needs of its server's connection."""

    name: str

    def unavailable_reason(self) -> str | None: ...

    def tool_named(self, name: str) -> "McpTool | None": ...

    @property
    def tools_known(self) -> bool: ...


# The server's progress notifications for a call: (progress, total, message), on the tools loop.
Progress = ProgressFnT
Caller = Callable[[str, dict[str, Any], Progress], Awaitable[types.CallToolResult]]


class McpTool(Tool[McpArguments]):
    Inputs = McpArguments

    def __init__(self, server: Server, listed: types.Tool, call: Caller) -> None:
        self.server = server
        self.tool_name = listed.name
        self.id = f"{server.name}.{listed.name}"
        self.name = listed.title or (listed.annotations.title if listed.annotations else None) or listed.name
        self.description = listed.description or ""
        self.source = f"mcp:{server.name}"
        self._call = call
        self._schema = listed.inputSchema
        self._schema_problem: str | None = None
        try:
            validator_class = jsonschema.validators.validator_for(self._schema, default=jsonschema.Draft202012Validator)
            validator_class.check_schema(self._schema)
            self._validator = validator_class(self._schema)
        except SchemaError as error:
            problem = f"The MCP server '{server.name}' gave the tool an invalid input schema: {error.message}"
            self._schema_problem = problem

    def unavailable_reason(self, settings: Settings) -> str | None:
        return self._schema_problem or self.server.unavailable_reason()

    def input_schema(self) -> dict[str, Any]:
        return self._schema

    def _problems(self, inputs: Mapping[str, Any], templated: Set[str] = frozenset()) -> Iterator[InputProblem]:
        if self._schema_problem is not None:
            return
        for error in sorted(self._validator.iter_errors(inputs), key=lambda e: list(map(str, e.absolute_path))):
            location = list(error.absolute_path)
            if location and location[0] in templated:
                continue
            yield input_path(location), error.message

    def input_problems(self, inputs: dict[str, object], templated: Set[str]) -> list[InputProblem]:
        return list(self._problems(inputs, templated))[:MAX_REPORTED_PROBLEMS]

    def parse_inputs(self, rendered: dict[str, object]) -> McpArguments:
        problems = list(self._problems(rendered))[:MAX_REPORTED_PROBLEMS]
        if problems:
            raise ToolError("invalid_inputs", "; ".join(f"{path}: {message}" for path, message in problems))
        return McpArguments(dict(rendered))

    async def run(self, inputs: McpArguments, ctx: ToolContext) -> dict[str, object]:
        limit = ctx.settings.tool_max_input_bytes
        size = len(orjson.dumps(inputs.root))
        if size > limit:
            raise ToolError("invalid_inputs", f"The inputs are {size} bytes as JSON; at most {limit} are sent.")
        return output_of(self.id, await self._call(self.tool_name, inputs.root, _progress_reporter(ctx)))


class McpStandIn(Tool[McpArguments]):
    """A tool id under a configured server whose tool list does not (yet) hold it: while the server starts, a step
    waits for it and runs the real tool; once the list is known, the id is refused at save time and the step fails
    with `tool_unavailable`."""

    Inputs = McpArguments

    def __init__(self, server: Server, tool_name: str, wait_until_listed: Callable[[], Awaitable[None]]) -> None:
        self.server = server
        self.tool_name = tool_name
        self.id = f"{server.name}.{tool_name}"
        self.name = tool_name
        self.description = f"A tool of the MCP server '{server.name}', which has not listed it."
        self.source = f"mcp:{server.name}"
        self._wait_until_listed = wait_until_listed

    def _missing(self) -> str:
        return f"The MCP server '{self.server.name}' offers no tool '{self.tool_name}'."

    def unavailable_reason(self, settings: Settings) -> str | None:
        reason = self.server.unavailable_reason()
        if reason is None and self.server.tools_known:
            return self._missing()
        return reason

    def input_schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def input_problems(self, inputs: dict[str, object], templated: Set[str]) -> list[InputProblem]:
        if self.server.tools_known:
            return [("toolId", f"unknown tool '{self.id}': {self._missing()}")]
        return []  # the server is not up: its tools are checked when the step runs

    def parse_inputs(self, rendered: dict[str, object]) -> McpArguments:
        return McpArguments(dict(rendered))

    async def run(self, inputs: McpArguments, ctx: ToolContext) -> dict[str, object]:
        await self._wait_until_listed()
        tool = self.server.tool_named(self.tool_name)
        if tool is None:
            raise ToolError("tool_unavailable", self.server.unavailable_reason() or self._missing())
        return await tool.run(tool.parse_inputs(inputs.root), ctx)


def _progress_reporter(ctx: ToolContext) -> Progress:
    """The server's progress notifications (those with a total) as the step's progress, reported on the step's loop
    without holding up the tools loop."""
    step_loop = asyncio.get_running_loop()

    async def report(progress: float, total: float | None, message: str | None) -> None:
        if total:
            percent = max(0, min(100, int(progress * 100 / total)))
            text = message or f"{progress:g} of {total:g}"
            asyncio.run_coroutine_threadsafe(ctx.report_progress(percent, text), step_loop)

    return report


def output_of(tool_id: str, result: types.CallToolResult) -> dict[str, object]:
    text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
    if result.isError:
        raise ToolError("tool_error", text or f"The MCP tool '{tool_id}' failed without saying why.")
    if result.structuredContent is not None:
        return dict(result.structuredContent)
    return {"text": text}
