"""The tools a workflow step can use, and the checks of a step's inputs against a tool's input schema."""

from collections.abc import Set
from typing import Any

from pydantic import BaseModel, ValidationError

from runwire.templating.sandbox import contains_template
from runwire.tools.base import Tool, ToolError
from runwire.tools.builtin.delay import DelayTool
from runwire.tools.builtin.http_request import HttpRequestTool
from runwire.tools.builtin.json_extract import JsonExtractTool
from runwire.tools.builtin.read_url import ReadUrlTool
from runwire.tools.builtin.template import TemplateTool

__all__ = ["Tool", "all_tools", "get_tool", "input_schema", "literal_input_problems", "parse_inputs"]

_TOOLS: tuple[Tool, ...] = (DelayTool(), TemplateTool(), JsonExtractTool(), HttpRequestTool(), ReadUrlTool())
_BY_ID = {tool.id: tool for tool in _TOOLS}


def get_tool(tool_id: str) -> Tool | None:
    return _BY_ID.get(tool_id)


def all_tools() -> list[Tool]:
    return list(_TOOLS)


def input_schema(tool: Tool) -> dict[str, Any]:
    return tool.Inputs.model_json_schema()


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
