"""The tools a workflow step can use, and the checks of a step's inputs against a tool's input schema."""

import re
from collections.abc import Sequence, Set
from typing import Any

from pydantic import BaseModel, ValidationError

from runwire.templating.sandbox import contains_template
from runwire.tools.base import Tool, ToolError, ToolOffer
from runwire.tools.builtin.delay import DelayTool
from runwire.tools.builtin.http_request import HttpRequestTool
from runwire.tools.builtin.json_extract import JsonExtractTool
from runwire.tools.builtin.llm import LlmTool
from runwire.tools.builtin.read_url import ReadUrlTool
from runwire.tools.builtin.template import TemplateTool

__all__ = ["Tool", "all_tools", "get_tool", "input_schema", "literal_input_problems", "offers", "parse_inputs"]

_TOOLS: tuple[Tool, ...] = (
    DelayTool(),
    TemplateTool(),
    JsonExtractTool(),
    HttpRequestTool(),
    ReadUrlTool(),
    LlmTool(),
)
_BY_ID = {tool.id: tool for tool in _TOOLS}


def get_tool(tool_id: str) -> Tool | None:
    return _BY_ID.get(tool_id)


def all_tools() -> list[Tool]:
    return list(_TOOLS)


def input_schema(tool: Tool) -> dict[str, Any]:
    return tool.Inputs.model_json_schema()


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


def literal_input_problems(tool: Tool, inputs: dict[str, object]) -> list[tuple[str, str]]:
    """(field path, message) for each way the literal inputs break the tool's schema.

    Fields holding a template anywhere are left out: their values are known only when the step runs.
    """
    try:
        tool.Inputs.model_validate(inputs)
    except ValidationError as error:
        templated = {name for name, value in inputs.items() if contains_template(value)}
        return _problems(error, skip_fields=templated)
    return []


def parse_inputs(tool: Tool, rendered: dict[str, object]) -> BaseModel:
    """The step's rendered inputs as the tool's input model; ToolError("invalid_inputs") when they do not fit."""
    try:
        return tool.Inputs.model_validate(rendered)
    except ValidationError as error:
        problems = "; ".join(f"{path}: {message}" for path, message in _problems(error))
        raise ToolError("invalid_inputs", problems) from None


def _problems(error: ValidationError, skip_fields: Set[str] = frozenset()) -> list[tuple[str, str]]:
    return [
        (
            "inputs" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]),
            detail["msg"],
        )
        for detail in error.errors()
        if not (detail["loc"] and detail["loc"][0] in skip_fields)
    ]
