"""The tools a workflow step can use, whatever their source, and the checks of a step's inputs against a tool's.

The built-in tools are always here. A Runwire process adds the others when it starts (`install`): its plugins'
tools and its MCP servers' tools, each source asked on every lookup, so that a server's changed tool list shows at
once.
"""

import re
from collections.abc import Sequence
from typing import Any, Protocol

from runwire.templating.sandbox import contains_template
from runwire.tools.base import InputProblem, Tool, ToolError, ToolOffer
from runwire.tools.builtin.approval import ApprovalTool
from runwire.tools.builtin.delay import DelayTool
from runwire.tools.builtin.http_request import HttpRequestTool
from runwire.tools.builtin.json_extract import JsonExtractTool
from runwire.tools.builtin.llm import LlmTool
from runwire.tools.builtin.read_url import ReadUrlTool
from runwire.tools.builtin.template import TemplateTool

__all__ = [
    "AnyTool",
    "Tool",
    "ToolSource",
    "all_tools",
    "builtin_tools",
    "get_tool",
    "input_schema",
    "install",
    "listed_tool",
    "literal_input_problems",
    "offers",
    "parse_inputs",
    "uninstall",
]

AnyTool = Tool[Any]

_BUILTIN: tuple[AnyTool, ...] = (
    DelayTool(),
    TemplateTool(),
    JsonExtractTool(),
    HttpRequestTool(),
    ReadUrlTool(),
    LlmTool(),
    ApprovalTool(),
)
_BUILTIN_BY_ID = {tool.id: tool for tool in _BUILTIN}


class ToolSource(Protocol):
    """Tools from outside the built-in set (plugins, an MCP server manager)."""

    def listed(self) -> list[AnyTool]:
        """The tools to show in `GET /api/tools`, in a stable order."""

    def find(self, tool_id: str) -> AnyTool | None:
        """The tool with this id, or a stand-in for one whose source cannot list it yet; None when it has none."""


_sources: tuple[ToolSource, ...] = ()


def install(source: ToolSource) -> None:
    global _sources
    _sources = (*_sources, source)


def uninstall(source: ToolSource) -> None:
    global _sources
    _sources = tuple(each for each in _sources if each is not source)


def builtin_tools() -> list[AnyTool]:
    return list(_BUILTIN)


def get_tool(tool_id: str) -> AnyTool | None:
    """The tool a step with this `toolId` runs (possibly a stand-in whose `unavailable_reason` says why it cannot)."""
    found = _BUILTIN_BY_ID.get(tool_id)
    for source in _sources:
        if found is not None:
            break
        found = source.find(tool_id)
    return found


def all_tools() -> list[AnyTool]:
    tools = list(_BUILTIN)
    seen = set(_BUILTIN_BY_ID)
    for source in _sources:
        for tool in source.listed():
            if tool.id not in seen:
                seen.add(tool.id)
                tools.append(tool)
    return tools


def listed_tool(tool_id: str) -> AnyTool | None:
    """The tool of `GET /api/tools` with this id."""
    return next((tool for tool in all_tools() if tool.id == tool_id), None)


def input_schema(tool: AnyTool) -> dict[str, Any]:
    return tool.input_schema()


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def offers(tool_ids: Sequence[str]) -> list[ToolOffer]:
    """The tools a model may call, as the model is offered them, whatever their source: a tool id becomes a function
    name the model APIs accept (an MCP tool's `server.tool` becomes `server_tool`, numbered if that clashes)."""
    result: list[ToolOffer] = []
    names: set[str] = set()
    for tool_id in dict.fromkeys(tool_ids):
        tool = get_tool(tool_id)
        if tool is None or not tool.offered_to_models:
            raise ToolError("invalid_inputs", f"inputs.tools: '{tool_id}' is not a tool a model can call")
        name = base = _UNSAFE_NAME.sub("_", tool_id)[:60]
        suffix = 1
        while name in names:
            suffix += 1
            name = f"{base}_{suffix}"
        names.add(name)
        result.append(ToolOffer(name, tool.id, tool.description, input_schema(tool)))
    return result


def literal_input_problems(tool: AnyTool, inputs: dict[str, object]) -> list[InputProblem]:
    """(field path, message) for each way the literal inputs break the tool's schema.

    Fields holding a template anywhere are left out: their values are known only when the step runs.
    """
    templated = {name for name, value in inputs.items() if contains_template(value)}
    return tool.input_problems(inputs, templated)


def parse_inputs(tool: AnyTool, rendered: dict[str, object]) -> Any:
    """The step's rendered inputs as the tool's inputs model; ToolError("invalid_inputs") when they do not fit."""
    return tool.parse_inputs(rendered)
