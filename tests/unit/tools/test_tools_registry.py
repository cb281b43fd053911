"""The tool registry: lookup, schemas, and the checks of literal and rendered inputs."""

import json
from typing import Any

import pytest

from runwire.tools import registry
from runwire.tools.base import Tool, ToolError
from tests.helpers import tool


def test_builtin_tools_in_a_stable_order() -> None:
    assert [each.id for each in registry.builtin_tools()] == [
        "delay",
        "template",
        "json_extract",
        "http_request",
        "read_url",
        "llm",
        "approval",
    ]
    assert registry.get_tool("nope") is None


@pytest.mark.parametrize("each", registry.builtin_tools(), ids=lambda each: each.id)
def test_every_tool_describes_itself_with_a_json_schema(each: Tool[Any]) -> None:
    schema = registry.input_schema(each)
    assert each.name and each.description
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    json.dumps(schema)


def test_input_schemas_use_the_wire_names() -> None:
    assert set(registry.input_schema(tool("http_request"))["properties"]) == {
        "method",
        "url",
        "headers",
        "body",
        "timeoutSeconds",
    }
    assert set(registry.input_schema(tool("read_url"))["properties"]) == {"url", "maxChars"}


def test_valid_literal_inputs_have_no_problems() -> None:
    assert registry.literal_input_problems(tool("delay"), {"seconds": 2}) == []
    assert registry.literal_input_problems(tool("json_extract"), {"data": None, "expression": "a"}) == []


@pytest.mark.parametrize(
    ("tool_id", "inputs", "problems"),
    [
        ("delay", {"seconds": "soon"}, ["inputs.seconds"]),
        ("delay", {"seconds": 3601}, ["inputs.seconds"]),
        ("delay", {}, ["inputs.seconds"]),
        ("delay", {"seconds": 1, "minutes": 2}, ["inputs.minutes"]),
        ("http_request", {"method": "GET", "url": "http://x.test/", "headers": {"a": 1}}, ["inputs.headers.a"]),
        ("json_extract", {"data": [1]}, ["inputs.expression"]),
        ("read_url", {"url": "http://x.test/", "maxChars": 0}, ["inputs.maxChars"]),
    ],
)
def test_literal_input_problems(tool_id: str, inputs: dict[str, object], problems: list[str]) -> None:
    found = registry.literal_input_problems(tool(tool_id), inputs)
    assert [path for path, _ in found] == problems
    assert all(message for _, message in found)


def test_templated_fields_are_left_for_run_time() -> None:
    http_request = tool("http_request")
    inputs: dict[str, object] = {
        "method": "{{ input.method }}",
        "url": "{{ input.url }}",
        "headers": {"Authorization": "Bearer {{ input.token }}", "X-Count": 3},
        "timeoutSeconds": "{{ input.seconds }}",
    }

    def paths(inputs: dict[str, object]) -> list[str]:
        return [path for path, _ in registry.literal_input_problems(http_request, inputs)]

    assert paths(inputs) == []
    assert paths({**inputs, "extra": 1}) == ["inputs.extra"]
    assert paths({"url": "{{ input.url }}"}) == ["inputs.method"]


def test_parse_inputs_gives_the_model_or_invalid_inputs() -> None:
    parsed = registry.parse_inputs(tool("read_url"), {"url": "https://example.com/", "maxChars": 5})
    assert parsed.model_dump(by_alias=True) == {"url": "https://example.com/", "maxChars": 5}
    with pytest.raises(ToolError) as raised:
        registry.parse_inputs(tool("delay"), {"seconds": [1]})
    assert raised.value.code == "invalid_inputs"
    assert raised.value.message.startswith("inputs.seconds: ")
