"""delay, template and json_extract: the tools that need no network."""

import asyncio
import time
from collections.abc import Callable

import pytest

from runwire.tools import registry
from runwire.tools.base import ToolContext
from tests.helpers import run_tool, tool, tool_error


def test_delay_sleeps_and_reports_progress_every_second(ctx: ToolContext, progress: list[tuple[int, str]]) -> None:
    started = time.monotonic()
    assert run_tool("delay", {"seconds": 1.5}, ctx) == {"sleptSeconds": 1.5}
    assert time.monotonic() - started >= 1.5
    (first, _), last = progress
    assert 66 <= first < 100
    assert last == (100, "slept 1.5 of 1.5 s")


def test_delay_of_zero_returns_at_once(ctx: ToolContext) -> None:
    assert run_tool("delay", {"seconds": 0}, ctx) == {"sleptSeconds": 0}


def test_cancelling_a_delay_stops_it_at_once(ctx: ToolContext) -> None:
    delay = tool("delay")

    async def cancel_after_start() -> float:
        task = asyncio.create_task(delay.run(registry.parse_inputs(delay, {"seconds": 30}), ctx))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        return time.monotonic() - started

    assert asyncio.run(cancel_after_start()) < 1


def test_template_renders_input_and_upstream_outputs(make_ctx: Callable[..., ToolContext]) -> None:
    ctx = make_ctx(template_context={"input": {"name": "Ada"}, "steps": {"a": {"output": {"n": 3}}}})
    template = "Hello {{ input.name }}, {{ steps.a.output.n * 2 }}"
    assert run_tool("template", {"template": template}, ctx) == {"text": "Hello Ada, 6"}


def test_template_output_is_always_text(make_ctx: Callable[..., ToolContext]) -> None:
    ctx = make_ctx(template_context={"input": {"n": 3}})
    assert run_tool("template", {"template": "{{ input.n }}"}, ctx) == {"text": "3"}


@pytest.mark.parametrize(
    "template", ["{{ input.missing }}", "{{ steps.other.output }}", "{% if %}", "{{ ''.__class__ }}"]
)
def test_template_failures_are_invalid_template(template: str, make_ctx: Callable[..., ToolContext]) -> None:
    ctx = make_ctx(template_context={"input": {}, "steps": {}})
    error = tool_error("template", {"template": template}, ctx)
    assert error.code == "invalid_template"
    assert error.message


def test_template_is_not_pre_rendered_by_the_engine() -> None:
    assert tool("template").raw_inputs == frozenset({"template"})


@pytest.mark.parametrize(
    ("data", "expression", "result"),
    [
        ({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 20}]}, "items[?price > `10`].name", ["b"]),
        ({"a": {"b": 1}}, "a.b", 1),
        ({"a": 1}, "missing", None),
        ([1, 2, 3], "length(@)", 3),
    ],
)
def test_json_extract(data: object, expression: str, result: object, ctx: ToolContext) -> None:
    assert run_tool("json_extract", {"data": data, "expression": expression}, ctx) == {"result": result}


@pytest.mark.parametrize("expression", ["items[", "length(@, @)", "abs('x')"])
def test_json_extract_refuses_bad_expressions(expression: str, ctx: ToolContext) -> None:
    error = tool_error("json_extract", {"data": {"items": []}, "expression": expression}, ctx)
    assert error.code == "invalid_expression"
